"""On a GPU, training in the default configuration never waits for the device between two
log lines: torch's sync debug mode is set to 'error' from each log line to the next."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from minirunner.config import Config
from minirunner.hooks import Hook
from minirunner.runner import Runner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

INTERVAL = 10  # the logger's default interval


def _logs_or_ends_epoch(hook: Hook, runner, batch_idx: int) -> bool:
    return (batch_idx + 1) % INTERVAL == 0 or hook.end_of_epoch(runner.train_dataloader, batch_idx)


class Disarm(Hook):
    """Before any other hook of an iteration that logs (or ends an epoch): syncs allowed."""

    priority = "HIGHEST"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if _logs_or_ends_epoch(self, runner, batch_idx):
            torch.cuda.set_sync_debug_mode("default")


class Arm(Hook):
    """After every other hook of an iteration that logged: any sync until the next raises."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.armed = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if (batch_idx + 1) % INTERVAL == 0 and not self.end_of_epoch(runner.train_dataloader, batch_idx):
            torch.cuda.set_sync_debug_mode("error")
            self.armed += 1

    def after_train(self, runner):
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.slow
def test_no_host_sync_between_log_lines(tmp_path):
    cfg = Config.fromfile(Path(__file__).parents[2] / "configs" / "digits_mlp.py")
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_epochs = 2
    runner = Runner.from_cfg(cfg)
    arm = Arm()
    runner.register_hook(Disarm())
    runner.register_hook(arm)
    try:
        runner.train()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert runner.train_dataloader.pin_memory  # the default when CUDA is used
    assert next(runner.model.parameters()).is_cuda
    # 45 iterations per epoch: armed after the lines at 10, 20, 30 and 40 of each epoch.
    assert arm.armed == 8
