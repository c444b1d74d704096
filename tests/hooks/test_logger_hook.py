"""LoggerHook options: interval, ignore_last, val/test lines, experiment-name lines."""

from __future__ import annotations

import logging
import os
import re

import pytest

from minirunner.hooks import LoggerHook
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg as _data


def _cfg(work_dir, logger: dict, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(10, 2),  # 5 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(8, 2, shuffle=False),  # 4 iterations
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        test_dataloader=_data(6, 2, shuffle=False),  # 3 iterations
        test_cfg=dict(),
        test_evaluator=dict(type="Accuracy"),
        default_hooks=dict(checkpoint=None, logger=logger),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _run(runner: Runner, method: str = "train") -> list[str]:
    capture = _Capture()
    logger = logging.getLogger("minirunner")
    logger.addHandler(capture)
    try:
        getattr(runner, method)()
    finally:
        logger.removeHandler(capture)
    return capture.lines


def _positions(lines: list[str], pattern: str) -> list[str]:
    return [m.group(1) for line in lines if (m := re.match(pattern, line))]


TRAIN_EPOCH = r"Epoch\(train\)\s+(\[\d+\]\[\s*\d+/\d+\])"


@pytest.mark.parametrize(
    "logger, expected",
    [
        (dict(interval=2), ["[1][2/5]", "[1][4/5]", "[2][2/5]", "[2][4/5]"]),
        (dict(interval=2, ignore_last=False), ["[1][2/5]", "[1][4/5]", "[1][5/5]", "[2][2/5]", "[2][4/5]", "[2][5/5]"]),
        (dict(interval=3), ["[1][3/5]", "[2][3/5]"]),
        # An interval longer than the epoch still logs once per epoch, at its end.
        (dict(interval=20), ["[1][5/5]", "[2][5/5]"]),
    ],
)
def test_train_lines_by_epoch(tmp_path, logger, expected):
    lines = _run(Runner(**_cfg(tmp_path, logger)))
    assert _positions(lines, TRAIN_EPOCH) == expected


@pytest.mark.parametrize(
    "ignore_last, expected",
    [(True, ["[3/8]", "[6/8]"]), (False, ["[3/8]", "[6/8]", "[8/8]"])],
)
def test_train_lines_by_iteration(tmp_path, ignore_last, expected):
    cfg = _cfg(tmp_path, dict(interval=3, ignore_last=ignore_last),
               train_cfg=dict(by_epoch=False, max_iters=8, val_interval=100))
    lines = _run(Runner(**cfg))
    assert _positions(lines, r"Iter\(train\) (\[\s*\d+/\d+\])") == expected


def test_val_and_test_lines(tmp_path):
    runner = Runner(**_cfg(tmp_path, dict(interval=2), train_cfg=dict(by_epoch=True, max_epochs=1)))
    lines = _run(runner)
    val_lines = [line for line in lines if line.startswith("Epoch(val)")]
    # Every 2 val iterations, then the summary with the metric.
    assert [re.match(r"Epoch\(val\) (\[\d+\]\[\d+/\d+\])", l).group(1) for l in val_lines] == [
        "[1][2/4]", "[1][4/4]", "[1][4/4]"
    ]
    assert "accuracy/top1:" in val_lines[-1]
    test_lines = [line for line in _run(runner, "test") if line.startswith("Epoch(test)")]
    assert "accuracy/top1:" in test_lines[-1]


def test_experiment_name_lines(tmp_path):
    runner = Runner(**_cfg(tmp_path, dict(interval=100, interval_exp_name=4), experiment_name="my_exp"))
    lines = _run(runner)
    # 10 iterations: after the 4th and the 8th.
    assert lines.count("Exp name: my_exp") == 2


def test_train_line_values(tmp_path):
    losses = []

    from minirunner.hooks import Hook

    class Keep(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses.append(float(outputs["loss"]))

    cfg = _cfg(tmp_path, dict(interval=5), log_processor=dict(window_size=5), custom_hooks=[Keep()],
               train_cfg=dict(by_epoch=True, max_epochs=1))
    lines = _run(Runner(**cfg))
    line = next(l for l in lines if l.startswith("Epoch(train)"))
    logged = float(re.search(r"loss: (\d+\.\d+)", line).group(1))
    assert logged == pytest.approx(sum(losses) / 5, abs=5e-5)
    assert re.search(r"lr: 1\.0000e-01", line)


@pytest.mark.parametrize("interval", [0, -1, 1.5])
def test_bad_interval(interval):
    with pytest.raises(ConfigError, match="interval"):
        LoggerHook(interval=interval)


def test_val_iteration_lines_do_not_repeat_the_previous_metrics(tmp_path):
    runner = Runner(**_cfg(tmp_path, dict(interval=2), train_cfg=dict(by_epoch=True, max_epochs=2)))
    val_lines = [line for line in _run(runner) if line.startswith("Epoch(val)")]
    assert len(val_lines) == 6  # per validation: after val iterations 2 and 4, then the summary
    for index, line in enumerate(val_lines):
        assert ("accuracy/top1" in line) == (index % 3 == 2), line


# ---------------------------------------------------------------------- between intervals
class _Recorder:
    """Stands in for the log processor, logger and visualizer of a fake runner."""

    def __init__(self, by_epoch: bool) -> None:
        self.by_epoch = by_epoch
        self.logged: list[int] = []  # runner.iter + 1 of each train line
        self.exp_names: list[int] = []
        self.runner = None

    def get_log_after_iter(self, runner, batch_idx, mode):
        self.logged.append(runner.iter + 1)
        return {"loss": 1.0}, "line"

    def info(self, message):
        if message.startswith("Exp name"):
            self.exp_names.append(self.runner.iter + 1)

    def add_scalars(self, tag, step, global_iter=None):
        assert step == global_iter == self.runner.iter + 1


def _fake_runner(by_epoch: bool, length: int, max_iters: int):
    from types import SimpleNamespace

    recorder = _Recorder(by_epoch)
    runner = SimpleNamespace(log_processor=recorder, logger=recorder, visualizer=recorder, iter=0, epoch=0,
                             max_iters=max_iters, train_dataloader=range(length), experiment_name="exp")
    recorder.runner = runner
    return runner, recorder


@pytest.mark.parametrize("by_epoch", [True, False])
def test_lines_on_exactly_the_iterations_the_rule_names(by_epoch):
    # The hook checks only on planned iterations; the plan must never miss one. Compare with
    # the rule applied to every iteration, over many settings and a mid-epoch start (resume).
    import itertools

    for interval, ignore_last, length, exp_every, start in itertools.product(
        (1, 2, 3, 7, 20), (True, False), (5, 6, 13), (4, 1000), (0, 8)
    ):
        epochs = 3
        max_iters = epochs * length
        hook = LoggerHook(interval=interval, ignore_last=ignore_last, interval_exp_name=exp_every)
        runner, recorder = _fake_runner(by_epoch, length, max_iters)
        expected_lines, expected_names = [], []
        if by_epoch:
            for epoch in range(start // length, epochs):
                runner.epoch = epoch
                runner.iter = max(epoch * length, start)
                hook.before_train_epoch(runner)
                for batch_idx in range(runner.iter - epoch * length, length):
                    runner.iter = epoch * length + batch_idx
                    hook.after_train_iter(runner, batch_idx)
                    inner = batch_idx + 1
                    if inner % interval == 0 or (inner == length and (not ignore_last or length <= interval)):
                        expected_lines.append(runner.iter + 1)
                    if (runner.iter + 1) % exp_every == 0:
                        expected_names.append(runner.iter + 1)
        else:
            runner.iter = start
            hook.before_train_epoch(runner)
            for iteration in range(start, max_iters):
                runner.iter = iteration
                hook.after_train_iter(runner, iteration)
                done = iteration + 1
                if done % interval == 0 or (not ignore_last and done == max_iters):
                    expected_lines.append(done)
                if done % exp_every == 0:
                    expected_names.append(done)
        settings = (interval, ignore_last, length, exp_every, start)
        assert recorder.logged == expected_lines, settings
        assert recorder.exp_names == expected_names, settings


# ---------------------------------------------------------------------- start and end of a run
def test_environment_config_and_param_groups_are_logged_once(tmp_path):
    import minirunner
    import torch

    from minirunner.config import Config

    runner = Runner.from_cfg(Config(_cfg(tmp_path, dict(interval=5), train_cfg=dict(by_epoch=True, max_epochs=1))))
    lines = _run(runner) + _run(runner, "test")
    env = [line for line in lines if "System environment:" in line]
    assert len(env) == 1  # not again for test() after train()
    for expected in (f"PyTorch: {torch.__version__}", f"minirunner: {minirunner.__version__}",
                     "Runtime environment:", "device: cpu", "world size: 1", "seed: 0", "launcher: none"):
        assert expected in env[0]
    (config,) = [line for line in lines if line.startswith("Config:\n")]
    assert config == "Config:\n" + runner.cfg.pretty_text.rstrip("\n")
    (groups,) = [line for line in lines if line.startswith("Parameter groups:\n")]
    assert "SGD" in groups and "lr" in groups and "net." in groups
    # Order: environment, config, then the table when training starts, then training lines.
    order = [lines.index(env[0]), lines.index(config), lines.index(groups),
             next(i for i, line in enumerate(lines) if line.startswith("Epoch(train)"))]
    assert order == sorted(order)


def test_after_run_closes_the_visualizer(tmp_path):
    runner = Runner(**_cfg(tmp_path, dict(interval=5), train_cfg=dict(by_epoch=True, max_epochs=1)))
    closed = []
    runner.visualizer.close = lambda: closed.append(True)
    runner.train()
    assert closed == [True]


def test_out_dir_receives_a_copy_of_the_logs(tmp_path):
    import os

    out = tmp_path / "remote"
    runner = Runner(**_cfg(tmp_path / "work", dict(interval=5, out_dir=str(out)),
                           train_cfg=dict(by_epoch=True, max_epochs=1)))
    runner.train()
    target = out / "work" / runner.timestamp
    assert (target / f"{runner.timestamp}.log").is_file()
    copied = (target / "vis_data" / "scalars.json").read_text(encoding="utf-8")
    assert copied == open(os.path.join(runner.log_dir, "vis_data", "scalars.json"), encoding="utf-8").read()


def test_bad_out_dir():
    with pytest.raises(ConfigError, match="out_dir"):
        LoggerHook(out_dir=3)


def test_start_of_run_summaries_are_not_built_when_info_is_not_logged(tmp_path, monkeypatch):
    import minirunner.hooks.logger_hook as logger_hook

    def fail(*args, **kwargs):
        raise AssertionError("formatted although log_level hides it")

    monkeypatch.setattr(logger_hook, "format_param_groups", fail)
    monkeypatch.setattr(logger_hook, "format_environment", fail)
    runner = Runner(**_cfg(tmp_path, logger=dict(interval=1), log_level="WARNING"))
    runner.train()  # neither summary is formatted, and training runs
    monkeypatch.undo()
    shown = Runner(**_cfg(tmp_path / "info", logger=dict(interval=1), log_level="INFO"))
    shown.train()
    with open(os.path.join(shown.log_dir, f"{shown.timestamp}.log"), encoding="utf-8") as handle:
        text = handle.read()
    assert "Parameter groups:" in text
