"""Resume gives the same weights as an uninterrupted run; load_from loads weights only."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from minirunner.hooks import Hook
from minirunner.runner import Runner
from runner_support import loader_cfg


def _data(num_samples: int, batch_size: int, shuffle: bool) -> dict:
    return loader_cfg(num_samples, batch_size, shuffle, num_features=8, num_classes=3)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        # Dropout and shuffling both draw random numbers during training.
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3, dropout=0.5),
        work_dir=str(work_dir),
        train_dataloader=_data(20, 4, shuffle=True),  # 5 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=4),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-3)),
        param_scheduler=[
            dict(type="LinearLR", by_epoch=False, start_factor=0.2, begin=0, end=6),
            dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.7),
        ],
        val_dataloader=_data(8, 4, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(logger=dict(interval=2)),
        randomness=dict(seed=2024),
    )
    cfg.update(overrides)
    return cfg


class StopAfter(Hook):
    """Interrupts training after ``epochs`` epochs (or ``iters`` iterations)."""

    def __init__(self, epochs: int | None = None, iters: int | None = None) -> None:
        self.epochs, self.iters = epochs, iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.iters is not None and runner.iter + 1 == self.iters:
            runner.train_loop.stop_training = True

    def after_train_epoch(self, runner):
        if self.epochs is not None and runner.epoch + 1 == self.epochs:
            runner.train_loop.stop_training = True


class Trace(Hook):
    """Records the loss of every iteration and where training started."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.started_at: tuple[int, int] | None = None

    def before_train(self, runner):
        self.started_at = (runner.epoch, runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs["loss"].clone())


def _state(runner: Runner) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("resume", [True, "auto"])
def test_epoch_boundary_resume_matches_uninterrupted_run(tmp_path, resume):
    straight_trace = Trace()
    straight = Runner(**_cfg(tmp_path / "straight", custom_hooks=[straight_trace]))
    straight.train()

    first = Runner(**_cfg(tmp_path / "resumed", custom_hooks=[StopAfter(epochs=2)]))
    first.train()
    assert first.epoch == 2
    assert open(tmp_path / "resumed" / "last_checkpoint").read().endswith("epoch_2.pth")

    second_trace = Trace()
    second = Runner(**_cfg(tmp_path / "resumed", resume=resume, custom_hooks=[second_trace]))
    second.train()
    assert second_trace.started_at == (2, 10)
    assert (second.epoch, second.iter) == (4, 20)
    # The losses of epochs 3 and 4 match one for one, and so do the final weights.
    for got, want in zip(second_trace.losses, straight_trace.losses[10:], strict=True):
        assert torch.equal(got, want)
    _assert_same_weights(_state(second), _state(straight))
    # The optimizer's momentum and the schedulers continued as well.
    assert second.optim_wrapper.param_groups[0]["lr"] == straight.optim_wrapper.param_groups[0]["lr"]
    # The message hub's history was restored: the smoothed losses logged after the resume
    # (window 10 reaches back before it) equal the uninterrupted run's.
    assert _logged(straight, after_step=10) == _logged(second, after_step=10)
    assert [step for step, _, _ in _logged(second, after_step=10)] == [12, 14, 17, 19]


def _logged(runner: Runner, after_step: int) -> list[tuple]:
    path = os.path.join(runner.log_dir, "vis_data", "scalars.json")
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    return [(r["step"], r["loss"], r["lr"]) for r in records if "loss" in r and r["step"] > after_step]


def test_resume_with_larger_max_epochs(tmp_path):
    # Train 2 epochs with max_epochs=2, then continue the same work dir to 4 (no schedulers,
    # whose default `end` would differ between the two configs).
    straight = Runner(**_cfg(tmp_path / "straight", param_scheduler=None))
    straight.train()
    Runner(**_cfg(tmp_path / "resumed", param_scheduler=None, train_cfg=dict(max_epochs=2))).train()
    second = Runner(**_cfg(tmp_path / "resumed", param_scheduler=None, resume=True))
    second.train()
    _assert_same_weights(_state(second), _state(straight))
    assert os.path.isfile(tmp_path / "resumed" / "epoch_4.pth")


def test_resume_true_with_load_from_resumes_that_checkpoint(tmp_path):
    straight = Runner(**_cfg(tmp_path / "straight"))
    straight.train()
    Runner(**_cfg(tmp_path / "first", custom_hooks=[StopAfter(epochs=3)])).train()
    # Resume from epoch 2 explicitly (not the newest, epoch 3) into a fresh work dir.
    trace = Trace()
    second = Runner(**_cfg(tmp_path / "second", resume=True, load_from=str(tmp_path / "first" / "epoch_2.pth"),
                           custom_hooks=[trace]))
    second.train()
    assert trace.started_at == (2, 10)
    _assert_same_weights(_state(second), _state(straight))


def test_resume_from_explicit_path(tmp_path):
    straight = Runner(**_cfg(tmp_path / "straight"))
    straight.train()
    Runner(**_cfg(tmp_path / "first", custom_hooks=[StopAfter(epochs=1)])).train()
    second = Runner(**_cfg(tmp_path / "second", resume=str(tmp_path / "first" / "epoch_1.pth")))
    second.train()
    _assert_same_weights(_state(second), _state(straight))


def test_resume_auto_without_checkpoint_starts_from_scratch(tmp_path):
    straight = Runner(**_cfg(tmp_path / "straight", train_cfg=dict(max_epochs=1)))
    straight.train()
    trace = Trace()
    fresh = Runner(**_cfg(tmp_path / "empty", train_cfg=dict(max_epochs=1), resume="auto", custom_hooks=[trace]))
    fresh.train()
    assert trace.started_at == (0, 0)
    _assert_same_weights(_state(fresh), _state(straight))


class Interrupted(Exception):
    pass


class CrashAfter(Hook):
    """Raises after iteration ``iters`` (1-based), once every other hook has run."""

    priority = "LOWEST"

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iters:
            raise Interrupted


@pytest.mark.parametrize("crash_at", [12, 15])
def test_mid_epoch_resume_matches_uninterrupted_run(tmp_path, crash_at):
    # Iteration checkpoints every 3 iterations in an epoch loop of 5 iterations per epoch:
    # 12 is inside the third epoch, 15 its last iteration (before after_train_epoch ran).
    hooks = dict(logger=dict(interval=2), checkpoint=dict(by_epoch=False, interval=3))
    straight_trace = Trace()
    straight = Runner(**_cfg(tmp_path / "straight", default_hooks=hooks, custom_hooks=[straight_trace]))
    straight.train()
    with pytest.raises(Interrupted):
        Runner(**_cfg(tmp_path / "resumed", default_hooks=hooks, custom_hooks=[CrashAfter(crash_at)])).train()
    trace = Trace()
    second = Runner(**_cfg(tmp_path / "resumed", default_hooks=hooks, resume=True, custom_hooks=[trace]))
    second.train()
    assert trace.started_at == (2, crash_at)
    assert (second.epoch, second.iter) == (4, 20)
    for got, want in zip(trace.losses, straight_trace.losses[crash_at:], strict=True):
        assert torch.equal(got, want)
    _assert_same_weights(_state(second), _state(straight))


@pytest.mark.parametrize("sampler", ["DefaultSampler", "InfiniteSampler"])
def test_iter_based_resume_matches_uninterrupted_run(tmp_path, sampler):
    loader = _data(20, 4, shuffle=True)
    loader["sampler"]["type"] = sampler
    common = dict(
        train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=13, val_interval=4),
        param_scheduler=dict(type="LinearLR", by_epoch=False, start_factor=0.2, end=8),
        default_hooks=dict(logger=dict(interval=2), checkpoint=dict(by_epoch=False, interval=3)),
    )
    straight = Runner(**_cfg(tmp_path / "straight", **common))
    straight.train()
    # Stop after iteration 6: one full pass of the 5-batch dataloader plus one batch.
    Runner(**_cfg(tmp_path / "resumed", custom_hooks=[StopAfter(iters=6)], **common)).train()
    trace = Trace()
    second = Runner(**_cfg(tmp_path / "resumed", resume="auto", custom_hooks=[trace], **common))
    second.train()
    assert trace.started_at[1] == 6 and second.iter == 13
    _assert_same_weights(_state(second), _state(straight))


# ---------------------------------------------------------------- load_from: weights only


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_load_from_loads_weights_only_non_strict(tmp_path):
    source = Runner(**_cfg(tmp_path / "source", train_cfg=dict(max_epochs=1)))
    source.train()
    weights = source.model.state_dict()
    # A checkpoint as a DDP run writes it: 'module.' in front of every key, one key
    # missing and one the model does not have.
    state = {f"module.{k}": v.clone() for k, v in weights.items() if k != "net.4.bias"}
    state["module.head.extra"] = torch.zeros(3)
    path = tmp_path / "external.pth"
    torch.save({"state_dict": state, "meta": {"epoch": 7, "iter": 70}}, path)

    class SeeStart(Hook):
        def before_train(self, runner):
            self.counters = (runner.epoch, runner.iter)
            self.weights = {k: v.clone() for k, v in runner.model.state_dict().items()}
            self.momentum_buffers = len(runner.optim_wrapper.optimizer.state)

    see = SeeStart()
    runner = Runner(**_cfg(tmp_path / "target", load_from=str(path), train_cfg=dict(max_epochs=1),
                           custom_hooks=[see]))
    initial_bias = runner.model.net[4].bias.detach().clone()
    capture = _Capture()
    logger = logging.getLogger("minirunner")
    logger.addHandler(capture)
    try:
        runner.train()
    finally:
        logger.removeHandler(capture)
    assert see.counters == (0, 0)  # not a resume: counters start at zero
    assert see.momentum_buffers == 0  # the optimizer state was not loaded
    for key, value in weights.items():
        if key == "net.4.bias":
            assert torch.equal(see.weights[key], initial_bias)  # missing: left as initialised
        else:
            assert torch.equal(see.weights[key], value), key
    report = [line for line in capture.lines if "external.pth" in line]
    assert report and "net.4.bias" in report[0] and "head.extra" in report[0]
    assert "missing" in report[0] and "unexpected" in report[0]


def test_load_from_with_val_uses_the_loaded_weights(tmp_path):
    source = Runner(**_cfg(tmp_path / "source", train_cfg=dict(max_epochs=2)))
    source.train()
    expected = source.val()
    target = Runner(**_cfg(tmp_path / "target", load_from=str(tmp_path / "source" / "epoch_2.pth"),
                           randomness=dict(seed=99)))
    assert target.val() == expected


def test_val_after_train_with_load_from_keeps_the_trained_weights(tmp_path):
    source = Runner(**_cfg(tmp_path / "source", train_cfg=dict(max_epochs=1)))
    source.train()
    runner = Runner(**_cfg(tmp_path / "target", train_cfg=dict(max_epochs=2),
                           load_from=str(tmp_path / "source" / "epoch_1.pth")))
    runner.train()
    trained = _state(runner)
    runner.val()
    # load_from is applied once, before training; validating afterwards must not reload it.
    _assert_same_weights(_state(runner), trained)


def test_hook_state_survives_a_different_set_of_custom_hooks(tmp_path):
    # The checkpoint hook's state (which files it keeps) must be found again even though the
    # resumed run registers other custom hooks than the interrupted one.
    hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=1, max_keep_ckpts=1))
    Runner(**_cfg(tmp_path, default_hooks=hooks, custom_hooks=[StopAfter(epochs=2), Trace()])).train()
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth")) == ["epoch_2.pth"]
    second = Runner(**_cfg(tmp_path, default_hooks=hooks, resume=True))
    assert second.get_hook("checkpoint").kept == []
    second.train()
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth")) == ["epoch_4.pth"]


def test_resume_takes_the_seed_of_the_checkpoint(tmp_path):
    straight = Runner(**_cfg(tmp_path / "straight", train_cfg=dict(max_epochs=2)))
    straight.train()
    Runner(**_cfg(tmp_path / "resumed", custom_hooks=[StopAfter(epochs=1)], train_cfg=dict(max_epochs=2))).train()
    # No seed given on resume: the run continues with the interrupted run's seed (the sampler
    # shuffles with it), so the result is still the uninterrupted one.
    second = Runner(**_cfg(tmp_path / "resumed", resume=True, randomness=dict(seed=None),
                           train_cfg=dict(max_epochs=2)))
    second.train()
    assert second.seed == 2024
    _assert_same_weights(_state(second), _state(straight))
