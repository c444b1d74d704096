"""runner.iter / runner.epoch inside hooks, the every_n_* helpers, and the exact event order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from minirunner.hooks import Hook
from minirunner.runner import Runner
from runner_support import loader_cfg as _data


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(6, 2),  # 3 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(4, 4, shuffle=False),  # 1 iteration
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(logger=dict(interval=1000)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class CounterRecorder(Hook):
    """Records (event, runner.epoch, runner.iter, batch_idx) for every event."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def _add(self, name, runner, batch_idx=None) -> None:
        self.events.append((name, runner.epoch, runner.iter, batch_idx))

    def before_run(self, runner):
        self._add("before_run", runner)

    def after_run(self, runner):
        self._add("after_run", runner)

    def before_train(self, runner):
        self._add("before_train", runner)

    def after_train(self, runner):
        self._add("after_train", runner)

    def before_train_epoch(self, runner):
        self._add("before_train_epoch", runner)

    def after_train_epoch(self, runner):
        self._add("after_train_epoch", runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._add("before_train_iter", runner, batch_idx)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        assert "loss" in outputs
        self._add("after_train_iter", runner, batch_idx)

    def before_val(self, runner):
        self._add("before_val", runner)

    def after_val(self, runner):
        self._add("after_val", runner)

    def before_val_epoch(self, runner):
        self._add("before_val_epoch", runner)

    def after_val_epoch(self, runner, metrics=None):
        assert "accuracy/top1" in metrics
        self._add("after_val_epoch", runner)

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self._add("before_val_iter", runner, batch_idx)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._add("after_val_iter", runner, batch_idx)

    def before_save_checkpoint(self, runner, checkpoint):
        self._add("before_save_checkpoint", runner)


def _train_epoch(epoch: int, iters_per_epoch: int) -> list[tuple]:
    """What one training epoch followed by its checkpoint and validation records, by hand."""
    events = [("before_train_epoch", epoch, epoch * iters_per_epoch, None)]
    for batch_idx in range(iters_per_epoch):
        it = epoch * iters_per_epoch + batch_idx
        events.append(("before_train_iter", epoch, it, batch_idx))
        events.append(("after_train_iter", epoch, it, batch_idx))
    done = (epoch + 1) * iters_per_epoch
    # runner.epoch is still the 0-based epoch index in after_train_epoch, so is the
    # checkpoint save (the CheckpointHook, VERY_LOW, runs after this NORMAL hook) ...
    events.append(("after_train_epoch", epoch, done, None))
    events.append(("before_save_checkpoint", epoch, done, None))
    # ... but it has been incremented by the time validation runs.
    events += [
        ("before_val", epoch + 1, done, None),
        ("before_val_epoch", epoch + 1, done, None),
        ("before_val_iter", epoch + 1, done, 0),
        ("after_val_iter", epoch + 1, done, 0),
        ("after_val_epoch", epoch + 1, done, None),
        ("after_val", epoch + 1, done, None),
    ]
    return events


def test_event_order_and_counters_for_two_epochs(tmp_path):
    recorder = CounterRecorder()
    Runner(**_cfg(tmp_path, custom_hooks=[recorder])).train()
    expected = [("before_run", 0, 0, None), ("before_train", 0, 0, None)]
    expected += _train_epoch(0, 3)
    expected += _train_epoch(1, 3)
    expected += [("after_train", 2, 6, None), ("after_run", 2, 6, None)]
    assert recorder.events == expected


def test_iter_based_counters_use_the_global_iteration(tmp_path):
    recorder = CounterRecorder()
    cfg = _cfg(
        tmp_path, custom_hooks=[recorder], train_cfg=dict(by_epoch=False, max_iters=4, val_interval=2),
        default_hooks=dict(logger=dict(interval=1000), checkpoint=dict(by_epoch=False, interval=2)),
    )
    Runner(**cfg).train()
    names = [event[0] for event in recorder.events]
    # One "epoch" wraps the whole run.
    assert names.count("before_train_epoch") == 1 and names.count("after_train_epoch") == 1
    iters = [(e[2], e[3]) for e in recorder.events if e[0] == "before_train_iter"]
    assert iters == [(0, 0), (1, 1), (2, 2), (3, 3)]
    # Checkpoints after iterations 2 and 4 (runner.iter is still the 0-based index), then val.
    saves = [e[2] for e in recorder.events if e[0] == "before_save_checkpoint"]
    vals = [e[2] for e in recorder.events if e[0] == "before_val"]
    assert saves == [1, 3] and vals == [2, 4]


def test_val_run_alone_sees_zero_counters(tmp_path):
    recorder = CounterRecorder()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[recorder]))
    runner.val()
    names = [event[0] for event in recorder.events]
    assert names == ["before_run", "before_val", "before_val_epoch", "before_val_iter", "after_val_iter",
                     "after_val_epoch", "after_val", "after_run"]
    assert all(event[1:3] == (0, 0) for event in recorder.events)


# ---------------------------------------------------------------- every_n_* helpers, by hand


def _at(epoch: int = 0, iteration: int = 0, max_epochs: int = 4, max_iters: int = 12) -> SimpleNamespace:
    return SimpleNamespace(epoch=epoch, iter=iteration, max_epochs=max_epochs, max_iters=max_iters)


def test_every_n_train_iters_counts_from_one():
    hook = Hook()
    hits = [i for i in range(12) if hook.every_n_train_iters(_at(iteration=i), 3)]
    assert hits == [2, 5, 8, 11]  # after the 3rd, 6th, 9th and 12th iteration
    assert not any(hook.every_n_train_iters(_at(iteration=i), 0) for i in range(12))


def test_every_n_epochs_counts_from_one():
    hook = Hook()
    hits = [e for e in range(6) if hook.every_n_epochs(_at(epoch=e), 2)]
    assert hits == [1, 3, 5]  # after the 2nd, 4th and 6th epoch


def test_every_n_with_start_matches_the_reference():
    # The reference begins at `start` (1-based) itself: start=3, n=2 -> 3, 5, 7, ...
    hook = Hook()
    epochs = [e + 1 for e in range(8) if hook.every_n_epochs(_at(epoch=e), 2, start=3)]
    iters = [i + 1 for i in range(8) if hook.every_n_train_iters(_at(iteration=i), 2, start=3)]
    assert epochs == [3, 5, 7]
    assert iters == [3, 5, 7]


def test_inner_iter_helpers_and_last_iteration():
    hook = Hook()
    assert [b for b in range(7) if hook.every_n_inner_iters(b, 3)] == [2, 5]
    loader = [None] * 5
    assert [b for b in range(5) if hook.end_of_epoch(loader, b)] == [4]
    assert [i for i in range(12) if hook.is_last_train_iter(_at(iteration=i))] == [11]
    assert [e for e in range(4) if hook.is_last_train_epoch(_at(epoch=e))] == [3]


def test_helpers_inside_a_real_run(tmp_path):
    class HelperHook(Hook):
        def __init__(self):
            self.iters, self.inner, self.ends, self.last, self.epochs = [], [], [], [], []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if self.every_n_train_iters(runner, 4):
                self.iters.append(runner.iter)
            if self.every_n_inner_iters(batch_idx, 2):
                self.inner.append((runner.epoch, batch_idx))
            if self.end_of_epoch(runner.train_dataloader, batch_idx):
                self.ends.append(runner.iter)
            if self.is_last_train_iter(runner):
                self.last.append(runner.iter)

        def after_train_epoch(self, runner):
            if self.every_n_epochs(runner, 2):
                self.epochs.append(runner.epoch)

    hook = HelperHook()
    Runner(**_cfg(tmp_path, custom_hooks=[hook], train_cfg=dict(max_epochs=4), val_cfg=None,
                  val_dataloader=None, val_evaluator=None)).train()
    # 3 iterations per epoch, 4 epochs = 12 iterations (0-based runner.iter inside the hook).
    assert hook.iters == [3, 7, 11]
    assert hook.inner == [(0, 1), (1, 1), (2, 1), (3, 1)]
    assert hook.ends == [2, 5, 8, 11]
    assert hook.last == [11]
    assert hook.epochs == [1, 3]


@pytest.mark.parametrize("by_epoch", [True, False])
def test_counters_between_runs_and_after_training(tmp_path, by_epoch):
    train_cfg = dict(by_epoch=True, max_epochs=2) if by_epoch else dict(by_epoch=False, max_iters=5)
    runner = Runner(**_cfg(tmp_path, train_cfg=train_cfg))
    assert (runner.epoch, runner.iter) == (0, 0)
    runner.train()
    assert runner.iter == (6 if by_epoch else 5)
    if by_epoch:
        assert runner.epoch == 2
