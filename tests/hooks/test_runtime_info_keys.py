"""RuntimeInfoHook writes the reference's keys: which go to the hub's info (update_info) and
which to its scalars (update_scalar)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import minirunner
from minirunner.hooks import Hook, RuntimeInfoHook
from minirunner.runner import Runner
from minirunner.logging.message_hub import MessageHub
from minirunner.optim import OptimWrapper
from minirunner.optim.wrappers.optimizer_wrapper_dict import OptimWrapperDict


class Dataset:
    metainfo = dict(classes=("cat", "dog"))


class Loader:
    dataset = Dataset()


class Cfg:
    pretty_text = "model = dict(type='Net')\n"


class FakeRunner:
    def __init__(self, optim_wrapper) -> None:
        self.message_hub = MessageHub(name="runtime-info-test")
        self.cfg = Cfg()
        self.seed = 5
        self.experiment_name = "exp_1"
        self.epoch, self.iter, self.max_epochs, self.max_iters = 1, 7, 3, 30
        self.train_dataloader = Loader()
        self.optim_wrapper = optim_wrapper


def _sgd(lr: float) -> OptimWrapper:
    return OptimWrapper(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr))


def test_run_and_train_info():
    runner = FakeRunner(_sgd(0.1))
    hook = RuntimeInfoHook()
    hook.before_run(runner)
    hook.before_train(runner)
    hub = runner.message_hub
    assert hub.get_info("cfg") == Cfg.pretty_text
    assert hub.get_info("seed") == 5
    assert hub.get_info("experiment_name") == "exp_1"
    assert hub.get_info("minirunner_version") == minirunner.__version__
    assert (hub.get_info("epoch"), hub.get_info("iter")) == (1, 7)  # a resumed run's counters
    assert (hub.get_info("max_epochs"), hub.get_info("max_iters")) == (3, 30)
    assert hub.get_info("dataset_meta") == Dataset.metainfo
    # Info, not scalars.
    assert not any(key in hub.log_scalars for key in ("epoch", "iter", "seed", "dataset_meta"))


def test_no_dataset_meta_without_metainfo():
    runner = FakeRunner(_sgd(0.1))
    runner.train_dataloader = type("L", (), {"dataset": object()})()
    RuntimeInfoHook().before_train(runner)
    assert runner.message_hub.get_info("dataset_meta") is None


def test_lr_of_each_optimizer_and_losses_are_scalars():
    runner = FakeRunner(OptimWrapperDict(gen=_sgd(0.1), disc=_sgd(0.02)))
    hook = RuntimeInfoHook()
    hook.before_train(runner)
    runner.iter = 8
    hook.before_train_iter(runner, batch_idx=0)
    hook.after_train_iter(runner, batch_idx=0, outputs=dict(loss=torch.tensor(1.5), loss_gen=torch.tensor(0.5)))
    hub = runner.message_hub
    assert hub.get_info("iter") == 8
    assert hub.get_scalar("train/gen.lr").current() == pytest.approx(0.1)
    assert hub.get_scalar("train/disc.lr").current() == pytest.approx(0.02)
    assert float(hub.get_scalar("train/loss").current()) == 1.5
    assert float(hub.get_scalar("train/loss_gen").current()) == 0.5
    assert "train/lr" not in hub.log_scalars


def test_metrics_numbers_are_scalars_and_the_rest_info():
    runner = FakeRunner(_sgd(0.1))
    hook = RuntimeInfoHook()
    metrics = dict(top1=91.0, count=3, loss=torch.tensor(0.25), per_class=[0.5, 0.75], confusion=torch.eye(2))
    hook.after_val_epoch(runner, metrics=metrics)
    hook.after_test_epoch(runner, metrics=metrics)
    hub = runner.message_hub
    for mode in ("val", "test"):
        assert hub.get_scalar(f"{mode}/top1").current() == 91.0
        assert hub.get_scalar(f"{mode}/count").current() == 3
        assert float(hub.get_scalar(f"{mode}/loss").current()) == 0.25
        assert hub.get_info(f"{mode}/per_class") == [0.5, 0.75]
        assert torch.equal(hub.get_info(f"{mode}/confusion"), torch.eye(2))
        assert f"{mode}/per_class" not in hub.log_scalars


# ---------------------------------------------------------------- with a real Runner
# RuntimeInfoHook reads the loop's counter and writes the hub's info dict directly when
# the Runner, loop and hub are the built-in classes; what a later hook sees must not change.
class _Recorder(Hook):
    priority = "NORMAL"

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        hub = runner.message_hub
        self.seen.append((runner.iter, hub.get_info("iter"), hub.get_scalar("train/lr").current()))


class _CountingHub(MessageHub):
    def __init__(self, name: str = "minirunner", **kwargs) -> None:
        super().__init__(name, **kwargs)
        self.iter_updates = 0

    def update_info(self, key, value, resumed=True):
        self.iter_updates += key == "iter"
        super().update_info(key, value, resumed)


def _tiny_runner(tmp_path, recorder: _Recorder) -> Runner:
    return Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=12, num_features=4, num_classes=2),
            batch_size=4, sampler=dict(type="DefaultSampler", shuffle=False),
        ),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[recorder],
        log_level="WARNING",
    )


def test_iter_info_matches_runner_iter_on_every_iteration(tmp_path):
    recorder = _Recorder()
    runner = _tiny_runner(tmp_path, recorder)
    runner.train()
    assert [(i, i) for i in range(6)] == [seen[:2] for seen in recorder.seen]
    assert all(lr == pytest.approx(0.1) for *_, lr in recorder.seen)
    hook = runner.get_hook("runtime_info")
    assert hook._loop is runner.train_loop and hook._hub is runner.message_hub  # the direct path ran


def test_a_hub_that_overrides_update_info_is_still_called(tmp_path):
    recorder = _Recorder()
    runner = _tiny_runner(tmp_path, recorder)
    runner.message_hub = _CountingHub("counting-hub")
    runner.train()
    assert runner.message_hub.iter_updates >= 6  # before_train, then once per iteration
    assert runner.get_hook("runtime_info")._hub is None
    assert [seen[:2] for seen in recorder.seen] == [(i, i) for i in range(6)]


class _OffsetRunner(Runner):
    """A Runner subclass with an iter of its own: the hook must store this one."""

    @property
    def iter(self) -> int:
        return super().iter + 100


def test_a_runner_whose_iter_is_its_own_is_read_the_public_way(tmp_path):
    recorder = _Recorder()
    runner = _tiny_runner(tmp_path, recorder)
    runner.__class__ = _OffsetRunner
    runner.train()
    assert [seen[:2] for seen in recorder.seen] == [(100 + i, 100 + i) for i in range(6)]
    assert runner.get_hook("runtime_info")._loop is None
