"""vis_data/scalars.json after short real runs: exactly which steps and which keys."""

from __future__ import annotations

import json
import os

import pytest

from minirunner.hooks import Hook
from minirunner.runner import Runner
from runner_support import loader_cfg as _data


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(10, 2),  # 5 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(4, 2, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(checkpoint=None, logger=dict(interval=2)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class LossRecorder(Hook):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs["loss"]))


def _records(runner: Runner) -> list[dict]:
    with open(os.path.join(runner.log_dir, "vis_data", "scalars.json"), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_epoch_based_run(tmp_path):
    recorder = LossRecorder()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[recorder], log_processor=dict(window_size=2)))
    runner.train()
    records = _records(runner)
    # Interval 2 in 5-iteration epochs, the short end skipped (ignore_last): iterations 2 and 4
    # of each epoch, i.e. global steps 2, 4, 7, 9; validation after each epoch at steps 1, 2.
    assert [r["step"] for r in records] == [2, 4, 1, 7, 9, 2]
    # "iter", on every record, is the global iteration: the one step axis of the trackers.
    assert [r["iter"] for r in records] == [2, 4, 5, 7, 9, 10]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "loss" not in r]
    # On CPU, without gradient clipping: no memory, no grad_norm.
    assert all(set(r) == {"step", "iter", "lr", "data_time", "loss", "time"} for r in train)
    assert all(set(r) == {"step", "iter", "accuracy/top1"} for r in val)
    for record in train:
        step = record["step"]
        assert record["loss"] == pytest.approx(sum(recorder.losses[step - 2 : step]) / 2, rel=1e-6)
        assert record["lr"] == 0.1
    assert [r["step"] for r in val] == [1, 2]


def test_iteration_based_run(tmp_path):
    cfg = _cfg(tmp_path, train_cfg=dict(by_epoch=False, max_iters=7, val_interval=4),
               default_hooks=dict(checkpoint=None, logger=dict(interval=3)))
    runner = Runner(**cfg)
    runner.train()
    records = _records(runner)
    # Train lines at iterations 3 and 6; validation after iteration 4 and at the end (7), at
    # the iteration count since the run is not by epoch.
    assert [(r["step"], "loss" in r) for r in records] == [(3, True), (4, False), (6, True), (7, False)]
    assert set(records[0]) == {"step", "iter", "lr", "data_time", "loss", "time"}
    assert set(records[1]) == {"step", "iter", "accuracy/top1"}
    assert all(r["iter"] == r["step"] for r in records)


def test_hierarchy_and_grad_norm(tmp_path):
    cfg = _cfg(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1),
               optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1), clip_grad=dict(max_norm=1.0)),
               log_processor=dict(log_with_hierarchy=True))
    runner = Runner(**cfg)
    runner.train()
    records = _records(runner)
    assert [r["step"] for r in records] == [2, 4, 1]
    assert set(records[0]) == {"step", "iter", "train/lr", "train/data_time", "train/loss", "train/grad_norm", "train/time"}
    assert set(records[2]) == {"step", "iter", "val/accuracy/top1"}


def test_metrics_logged_at_the_iteration_when_asked(tmp_path):
    cfg = _cfg(tmp_path, default_hooks=dict(checkpoint=None, logger=dict(interval=2, log_metric_by_epoch=False)))
    runner = Runner(**cfg)
    runner.train()
    assert [r["step"] for r in _records(runner) if "accuracy/top1" in r] == [5, 10]


def test_config_is_saved_beside_the_scalars(tmp_path):
    from minirunner.config import Config

    runner = Runner.from_cfg(Config(_cfg(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1))))
    runner.train()
    text = open(os.path.join(runner.log_dir, "vis_data", "config.py"), encoding="utf-8").read()
    assert text == runner.cfg.pretty_text
