"""Resuming with a changed config: every value that differs is logged with where it comes from."""

from __future__ import annotations

import logging

import pytest
import torch

from minirunner.hooks import Hook
from minirunner.runner import Runner


def _cfg(work_dir, batch_size: int = 4, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=24, num_features=8, num_classes=3),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=batch_size,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        param_scheduler=dict(type="CosineAnnealingLR", by_epoch=True, eta_min=0.01),  # end: max_epochs
        default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=5)),
        randomness=dict(seed=13),
    )
    cfg.update(overrides)
    return cfg


class Crash(Exception):
    pass


class CrashAfter(Hook):
    priority = "LOWEST"

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iters:
            raise Crash


class FirstBatch(Hook):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if not hasattr(self, "inputs"):
            self.inputs = data_batch["inputs"].clone()


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.lines.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    handler = Capture()
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _crashed(work_dir, at: int = 8, **overrides) -> None:
    with pytest.raises(Crash):
        Runner(**_cfg(work_dir, custom_hooks=[CrashAfter(at)], **overrides)).train()


def test_max_epochs_schedule_and_lr_changes_are_reported(tmp_path, warnings_logged):
    _crashed(tmp_path)  # resumes from iter_5.pth
    cfg = _cfg(tmp_path, resume=True, train_cfg=dict(by_epoch=True, max_epochs=3),
               optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.2, momentum=0.9)))
    runner = Runner(**cfg)
    runner.train()
    resume_lines = [line for line in warnings_logged if line.startswith("resume: ")]
    assert "resume: max_epochs 3 from the config (the checkpoint's run had 2)" in resume_lines
    assert any("CosineAnnealingLR end=2 from the checkpoint (the config gives 3)" in line for line in resume_lines)
    assert any("optimizer group 0 lr 0.1 from the checkpoint (the config gives 0.2)" in line for line in resume_lines)
    assert runner.epoch == 3  # the new max_epochs is the one used


def test_a_new_batch_size_continues_at_the_right_sample(tmp_path, warnings_logged):
    _crashed(tmp_path)  # iter_5.pth: epoch 0, 5 batches of 4 = 20 samples used
    first = FirstBatch()
    Runner(**_cfg(tmp_path, batch_size=2, resume=True, custom_hooks=[first])).train()
    assert "resume: batch_size 2 from the config (the checkpoint's run used 4)" in warnings_logged
    # Epoch 0's order is DefaultSampler's: a permutation drawn with seed 13 + epoch 0. The
    # resumed run starts with its 21st and 22nd samples.
    order = torch.randperm(24, generator=torch.Generator().manual_seed(13)).tolist()
    dataset = Runner(**_cfg(tmp_path / "probe")).train_dataloader.dataset
    expected = torch.stack([dataset[i]["inputs"] for i in order[20:22]])
    assert torch.equal(first.inputs, expected)


def test_a_new_accumulation_drops_the_unfinished_window(tmp_path, warnings_logged):
    accumulate = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), accumulative_counts=2)
    _crashed(tmp_path, optim_wrapper=accumulate)  # iter_5.pth: 5 % 2, inside a window
    assert "grads" in torch.load(tmp_path / "iter_5.pth", weights_only=True)
    Runner(**_cfg(tmp_path, resume=True, optim_wrapper=dict(accumulate, accumulative_counts=3))).train()
    assert any(
        line.startswith("resume: accumulative_counts 3 from the config (the checkpoint's run used 2)")
        and "dropped" in line
        for line in warnings_logged
    )


def test_an_unchanged_config_reports_nothing(tmp_path, warnings_logged):
    _crashed(tmp_path)
    Runner(**_cfg(tmp_path, resume=True)).train()
    assert not [line for line in warnings_logged if line.startswith("resume: ")]
