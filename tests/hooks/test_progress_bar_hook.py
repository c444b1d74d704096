"""ProgressBarHook: bars on a terminal only, log lines intact above them, off by config."""

from __future__ import annotations

import io
import re
import sys

import pytest

from minirunner.hooks import ProgressBarHook
from minirunner.logging import LOGGER_NAME, set_current_logger
from minirunner.logging import progress
from minirunner.runner import Runner
from runner_support import loader_cfg as _data

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_LINE = re.compile(r"^\d\d/\d\d \d\d:\d\d:\d\d - minirunner - INFO - (.*)$")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(10, 2),  # 5 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(6, 2, shuffle=False),  # 3 iterations
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(checkpoint=None, logger=dict(interval=2)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


def _pieces(text: str) -> list[str]:
    """What a terminal shows: pieces between newlines and carriage returns, without colours."""
    pieces = []
    for line in ANSI.sub("", text).split("\n"):
        pieces += [piece.rstrip() for piece in line.split("\r") if piece.strip()]
    return pieces


@pytest.fixture(autouse=True)
def clean_bars():
    set_current_logger(LOGGER_NAME)
    yield
    progress.close_all_bars()


def test_registered_as_a_default_hook(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    hook = runner.get_hook("progress")
    assert isinstance(hook, ProgressBarHook) and hook.priority == "BELOW_NORMAL"
    names = [type(h).__name__ for h in runner.hooks]
    assert names.index("ProgressBarHook") == names.index("LoggerHook") + 1
    assert Runner(**_cfg(tmp_path, default_hooks=dict(progress=None))).get_hook("progress") is None


def test_no_bar_and_no_calls_when_not_a_terminal(tmp_path, capsys):
    runner = Runner(**_cfg(tmp_path))
    hook = runner.get_hook("progress")
    assert hook.enabled is False
    # Nothing to dispatch: the runner never calls the hook, per iteration or otherwise.
    assert hook.event_handlers() == {}
    assert all(getattr(getattr(h, "func", h), "__self__", None) is not hook
               for handlers in runner._hook_table.values() for h in handlers)
    runner.train()
    out = capsys.readouterr().out
    assert "\r" not in out and "it/s" not in out and progress.bars_open() == 0
    assert "Epoch(train)  [1][2/5]" in out


def test_bars_on_a_terminal_with_log_lines_intact(tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    runner = Runner(**_cfg(tmp_path))
    assert runner.get_hook("progress").enabled is True
    runner.train()
    pieces = _pieces(terminal.getvalue())
    bars = [p for p in pieces if re.match(r"^(Epoch 1/1|Val):", p)]
    assert any(re.search(r"Epoch 1/1: .*\| [1-5]/5 ", p) for p in bars), bars
    assert any(p.startswith("Val:") for p in bars)
    messages = [m.group(1) for p in pieces if (m := LOG_LINE.match(p))]
    # The lines logged while the epoch's bar was open (iterations 2 and 4), whole.
    train = [m for m in messages if m.startswith("Epoch(train)")]
    assert [m[:25] for m in train] == ["Epoch(train)  [1][2/5]  l", "Epoch(train)  [1][4/5]  l"]
    assert all(re.search(r"  loss: \d+\.\d{4}$", m) for m in train)
    assert any(re.match(r"Epoch\(val\) \[1\]\[3/3\]  accuracy/top1: \d+\.\d{4}", m) for m in messages)
    assert not any("minirunner - INFO" in p for p in bars)
    assert progress.bars_open() == 0  # every bar closed at the end


def test_iteration_based_training_has_one_bar_for_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    runner = Runner(**_cfg(tmp_path, train_cfg=dict(by_epoch=False, max_iters=7, val_interval=100)))
    runner.train()
    bars = [p for p in _pieces(terminal.getvalue()) if p.startswith("Train:")]
    assert bars and all("/7 " in p for p in bars)


def test_forced_on_and_off():
    assert ProgressBarHook(enabled=False).event_handlers() == {}
    handlers = ProgressBarHook(enabled=True).event_handlers()
    assert {"before_train_epoch", "after_train_iter", "after_train_epoch", "before_val_epoch", "after_val_iter",
            "after_val_epoch", "before_test_epoch", "after_test_iter", "after_test_epoch"} <= set(handlers)


def test_epoch_bar_starts_where_a_resume_left_off(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(sys, "stdout", FakeTerminal())
    hook = ProgressBarHook(enabled=True)
    runner = SimpleNamespace(train_dataloader=range(5), max_epochs=3, max_iters=15, epoch=1, iter=8)
    hook.before_train_epoch(runner)
    try:
        assert (hook._bar.n, hook._bar.total, hook._bar.desc) == (3, 5, "Epoch 2/3")
        hook.after_train_iter(runner, 3)
        assert hook._bar.n == 4
    finally:
        hook.after_train_epoch(runner)
    assert hook._bar is None
