"""`LoggerHook`: writes log lines and sends scalars to the visualizer."""

from __future__ import annotations

from typing import Any

from minirunner.registry import HOOKS
from minirunner.utils import ConfigError

from .hook import Hook


@HOOKS.register_module()
class LoggerHook(Hook):
    """Logs training every ``interval`` iterations and the metrics after each val/test epoch.

    Args:
        interval: log every this many training (and val/test) iterations.
        ignore_last: skip the short stretch at the end of an epoch that does not fill an interval.
        interval_exp_name: log the experiment name every this many iterations.
        out_dir: unused here; kept so reference configs that set it still load.
        log_metric_by_epoch: send val metrics to the backends at the epoch number (else the iteration).
    """

    priority = "BELOW_NORMAL"

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = True,
        interval_exp_name: int = 1000,
        out_dir: str | None = None,
        log_metric_by_epoch: bool = True,
    ) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"interval must be a positive int, got {interval!r}", key="interval")
        self.interval = interval
        self.ignore_last = ignore_last
        self.interval_exp_name = interval_exp_name
        self.out_dir = out_dir
        self.log_metric_by_epoch = log_metric_by_epoch
        self._epoch_length = 0

    def before_train_epoch(self, runner: Any) -> None:
        # Read once per epoch: len() of a DataLoader goes through its sampler each time.
        self._epoch_length = len(runner.train_dataloader) if runner.log_processor.by_epoch else 0

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        if self.every_n_train_iters(runner, self.interval_exp_name):
            runner.logger.info(f"Exp name: {runner.experiment_name}")
        if runner.log_processor.by_epoch:
            length = self._epoch_length
            at_interval = (batch_idx + 1) % self.interval == 0 or (
                batch_idx + 1 == length and (not self.ignore_last or length <= self.interval)
            )
        else:
            at_interval = self.every_n_train_iters(runner, self.interval) or (
                not self.ignore_last and self.is_last_train_iter(runner)
            )
        if not at_interval:
            return
        tag, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "train")
        runner.logger.info(line)
        runner.visualizer.add_scalars(tag, step=runner.iter + 1)

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.every_n_inner_iters(batch_idx, self.interval):
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "val")
            runner.logger.info(line)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.every_n_inner_iters(batch_idx, self.interval):
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "test")
            runner.logger.info(line)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        tag, line = runner.log_processor.get_log_after_epoch(runner, len(runner.val_dataloader), "val")
        runner.logger.info(line)
        step = runner.epoch if self.log_metric_by_epoch and runner.log_processor.by_epoch else runner.iter
        runner.visualizer.add_scalars(tag, step=step)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        _, line = runner.log_processor.get_log_after_epoch(runner, len(runner.test_dataloader), "test")
        runner.logger.info(line)
