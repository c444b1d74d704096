"""SIGTERM and SIGINT: finish the iteration, save, exit 143/130; a second signal exits at once.

The signals are sent by the process to itself from a hook, at a chosen point, so the
tests are exact about where they arrive. (tests/tools/test_kill_resume.py checks the exit
status of a real process.)
"""

from __future__ import annotations

import os
import signal

import pytest
import torch

from minirunner.hooks import Hook
from minirunner.runner import Runner
from minirunner.runner import TrainingInterrupted
from runner_support import loader_cfg


def _data(num_samples: int, shuffle: bool) -> dict:
    return loader_cfg(num_samples, 4, shuffle, num_features=8, num_classes=3)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3, dropout=0.5),
        work_dir=str(work_dir),
        train_dataloader=_data(24, shuffle=True),  # 6 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), accumulative_counts=2),
        param_scheduler=dict(type="LinearLR", by_epoch=False, start_factor=0.2, begin=0, end=7),
        val_dataloader=_data(8, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(logger=dict(interval=2), checkpoint=dict(by_epoch=True, interval=1)),
        randomness=dict(seed=3),
    )
    cfg.update(overrides)
    return cfg


class SendSignal(Hook):
    """Sends ``signum`` to this process ``times`` times before iteration ``at`` (1-based)."""

    def __init__(self, signum: int, at: int, times: int = 1) -> None:
        self.signum, self.at, self.times = signum, at, times
        self.iterations_run = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iterations_run += 1


class Trace(Hook):
    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.started_at = None

    def before_train(self, runner):
        self.started_at = (runner.epoch, runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs["loss"].detach().clone())


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    trace = Trace()
    runner = Runner(**_cfg(tmp_path_factory.mktemp("straight"), custom_hooks=[trace]))
    runner.train()
    return trace, {k: v.clone() for k, v in runner.model.state_dict().items()}


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_epoch_saves_exits_and_resumes_exactly(tmp_path, straight, signum, status):
    straight_trace, straight_weights = straight
    before = signal.getsignal(signum)
    sender = SendSignal(signum, at=9)  # the 3rd iteration of the 2nd epoch; 9 % 2: mid-window
    with pytest.raises(TrainingInterrupted) as raised:
        Runner(**_cfg(tmp_path, custom_hooks=[sender])).train()
    assert raised.value.code == status and isinstance(raised.value, SystemExit)
    # The iteration in progress was finished, no later one started; the checkpoint is there.
    assert sender.iterations_run == 9
    assert raised.value.checkpoint == str(tmp_path / "iter_9.pth")
    checkpoint = torch.load(tmp_path / "iter_9.pth", weights_only=True)
    assert (checkpoint["loop"]["epoch"], checkpoint["loop"]["iter"]) == (1, 9)
    assert "grads" in checkpoint  # the unfinished accumulation window
    assert open(tmp_path / "last_checkpoint").read() == "iter_9.pth"  # relative: copies point at their own
    assert signal.getsignal(signum) is before  # the previous handler is back

    trace = Trace()
    resumed = Runner(**_cfg(tmp_path, resume="auto", custom_hooks=[trace]))
    resumed.train()
    assert trace.started_at == (1, 9)
    for got, want in zip(trace.losses, straight_trace.losses[9:], strict=True):
        assert torch.equal(got, want)
    _assert_same_weights(resumed.model.state_dict(), straight_weights)


def test_signal_during_validation_stops_before_the_next_epoch(tmp_path, straight):
    straight_trace, straight_weights = straight

    class SignalInValidation(Hook):
        def before_val_epoch(self, runner):
            if runner.epoch == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    sender = SendSignal(signal.SIGTERM, at=10**9)  # never sends; counts iterations
    with pytest.raises(TrainingInterrupted) as raised:
        Runner(**_cfg(tmp_path, custom_hooks=[SignalInValidation(), sender])).train()
    # Epoch 1 was complete (and saved as epoch_1.pth, the same point): no iteration of
    # epoch 2 ran and no second file was written.
    assert sender.iterations_run == 6
    assert raised.value.checkpoint == str(tmp_path / "epoch_1.pth")
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth")) == ["epoch_1.pth"]
    resumed = Runner(**_cfg(tmp_path, resume=True))
    resumed.train()
    _assert_same_weights(resumed.model.state_dict(), straight_weights)


def test_signal_in_an_iteration_based_loop(tmp_path):
    common = dict(
        train_cfg=dict(by_epoch=False, max_iters=10, val_interval=100),
        default_hooks=dict(logger=dict(interval=2), checkpoint=dict(by_epoch=False, interval=100)),
        param_scheduler=None,
    )
    straight = Runner(**_cfg(tmp_path / "straight", **common))
    straight.train()
    with pytest.raises(TrainingInterrupted) as raised:
        Runner(**_cfg(tmp_path / "run", custom_hooks=[SendSignal(signal.SIGINT, at=8)], **common)).train()
    assert raised.value.code == 130 and raised.value.checkpoint.endswith("iter_8.pth")
    # 8 iterations of a 6-batch pass: the second pass had used 2 batches.
    checkpoint = torch.load(raised.value.checkpoint, weights_only=True)
    assert (checkpoint["sampler"]["epoch"], checkpoint["sampler"]["batches"]) == (1, 2)
    resumed = Runner(**_cfg(tmp_path / "run", resume=True, **common))
    resumed.train()
    _assert_same_weights(resumed.model.state_dict(), straight.model.state_dict())


class Exited(BaseException):
    pass


def test_a_second_signal_exits_at_once(tmp_path, monkeypatch):
    codes = []

    def fake_exit(code):
        codes.append(code)
        raise Exited

    monkeypatch.setattr(os, "_exit", fake_exit)
    sender = SendSignal(signal.SIGTERM, at=3, times=2)
    with pytest.raises(Exited):
        Runner(**_cfg(tmp_path, custom_hooks=[sender])).train()
    # Out at once: iteration 3 did not finish and nothing was saved.
    assert codes == [143]
    assert sender.iterations_run == 2
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".pth")]


def test_handlers_are_restored_after_an_error(tmp_path):
    class Boom(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            raise ValueError("boom")

    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    with pytest.raises(ValueError, match="boom"):
        Runner(**_cfg(tmp_path, custom_hooks=[Boom()])).train()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
