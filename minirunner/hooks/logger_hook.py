"""`LoggerHook`: writes log lines and sends scalars to the visualizer."""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any, Sequence

import torch

from minirunner.dist import is_main_process
from minirunner.logging.summary import collect_env, format_environment, format_param_groups
from minirunner.optim.nonfinite import check_logged_losses
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError

from .hook import Hook

_NEVER = 2**62


@HOOKS.register_module()
class LoggerHook(Hook):
    """Logs training every ``interval`` iterations and the metrics after each val/test epoch.

    Lines go to the console and the run's log file (through ``runner.logger``); the same
    scalars go to ``runner.visualizer`` (``vis_data/scalars.json`` by default). At the start
    of a run it logs the environment (versions, device, world size, seed) and the full
    config, and when training starts, the optimizer's parameter groups.

    At each training log line it also checks that the losses logged since the previous
    one are finite (``optim_wrapper.nonfinite``, default ``'raise'``: see
    :func:`minirunner.optim.nonfinite.check_logged_losses`), and reports the steps an fp16
    loss scaler skipped since then.

    Args:
        interval: log every this many training (and val/test) iterations.
        ignore_last: skip the short stretch at the end of an epoch that does not fill an interval.
        interval_exp_name: log the experiment name every this many iterations.
        out_dir: when set, copy the run's log files (those ending in ``out_suffix``) to
            ``<out_dir>/<work_dir name>/<timestamp>/`` when the run ends.
        out_suffix: which files ``out_dir`` receives.
        keep_local: keep the local copies after copying them to ``out_dir``.
        log_metric_by_epoch: send val metrics to the backends at the epoch number (else the iteration).
    """

    priority = "BELOW_NORMAL"

    def __init__(
        self,
        interval: int = 10,
        ignore_last: bool = True,
        interval_exp_name: int = 1000,
        out_dir: str | None = None,
        out_suffix: str | Sequence[str] = (".json", ".log", ".py", "yaml"),
        keep_local: bool = True,
        log_metric_by_epoch: bool = True,
    ) -> None:
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ConfigError(f"interval must be a positive int, got {interval!r}", key="interval")
        if out_dir is not None and not isinstance(out_dir, str):
            raise ConfigError(f"out_dir must be a folder path or None, got {out_dir!r}", key="out_dir")
        self.interval = interval
        self.ignore_last = ignore_last
        self.interval_exp_name = interval_exp_name
        self.out_dir = out_dir
        self.out_suffix = (out_suffix,) if isinstance(out_suffix, str) else tuple(out_suffix)
        self.keep_local = keep_local
        self.log_metric_by_epoch = log_metric_by_epoch
        self._epoch_length = 0
        self._by_epoch = True
        # Iterations done, counted here, and the count at which something may be due: between
        # the two, after_train_iter is one increment and one comparison.
        self._done = 0
        self._next = 0
        self._env_logged = False
        # (log name, wrapper) of each optimizer wrapper with a loss scaler, and the skipped
        # steps already reported (both set in before_train; empty without fp16).
        self._scalers: list[tuple[str, Any]] = []
        self._scaler_skips_reported: list[int] = []

    # ------------------------------------------------------------------ start of a run
    def before_run(self, runner: Any) -> None:
        if self._env_logged:  # once per runner, not again for a val() or test() after train()
            return
        self._env_logged = True
        # What is not logged is not formatted either (log_level='WARNING' skips it all).
        verbose = runner.logger.isEnabledFor(logging.INFO)
        if verbose:
            runner.logger.info("\n" + format_environment(collect_env(), _runtime_env(runner)))
        cfg = getattr(runner, "cfg", None)
        if cfg is not None:
            if verbose:
                runner.logger.info("Config:\n" + cfg.pretty_text.rstrip("\n"), extra={"syntax": "python"})
            add_config = getattr(runner.visualizer, "add_config", None)
            if add_config is not None:
                add_config(cfg)

    def before_train(self, runner: Any) -> None:
        if (
            runner.optim_wrapper is not None
            and not isinstance(runner.optim_wrapper, dict)
            and runner.logger.isEnabledFor(logging.INFO)
        ):
            table = format_param_groups(runner.model, runner.optim_wrapper)
            runner.logger.info("Parameter groups:\n" + table)
            for line in _what_the_run_does(runner):
                runner.logger.info(line)
        self._scalers = _loss_scalers(runner.optim_wrapper)
        self._scaler_skips_reported = [wrapper.skipped_steps for _, wrapper in self._scalers]

    # ------------------------------------------------------------------ training
    def before_train_epoch(self, runner: Any) -> None:
        self._by_epoch = runner.log_processor.by_epoch
        # Read once per epoch: len() of a DataLoader goes through its sampler each time.
        self._epoch_length = len(runner.train_dataloader) if self._by_epoch else 0
        # Check on the epoch's first iteration; that check plans the next one.
        self._done = runner.iter
        self._next = runner.iter + 1

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        self._done += 1
        if self._done < self._next:
            return
        self._train_event(runner, batch_idx)

    def _train_event(self, runner: Any, batch_idx: int) -> None:
        """The full check, on the iterations :meth:`_plan` said something may be due."""
        done = self._done = runner.iter + 1
        inner = batch_idx + 1
        if self.interval_exp_name > 0 and done % self.interval_exp_name == 0:
            runner.logger.info(f"Exp name: {runner.experiment_name}")
        if self._by_epoch:
            length = self._epoch_length
            at_interval = inner % self.interval == 0 or (
                inner == length and (not self.ignore_last or length <= self.interval)
            )
        else:
            at_interval = done % self.interval == 0 or (not self.ignore_last and done == runner.max_iters)
        if at_interval:
            tag, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "train")
            runner.logger.info(line)
            runner.visualizer.add_scalars(tag, step=done, global_iter=done)
            if self._scalers:
                self._report_scaler_skips(runner)
            # The line above converted the logged losses to numbers: checking them is free.
            check_logged_losses(runner)
        self._next = self._plan(runner, done, inner)

    def _report_scaler_skips(self, runner: Any) -> None:
        """A line when an fp16 loss scaler skipped steps (inf/NaN gradients) since the last one."""
        for index, (name, wrapper) in enumerate(self._scalers):
            total = wrapper.skipped_steps
            new = total - self._scaler_skips_reported[index]
            if new:
                self._scaler_skips_reported[index] = total
                runner.logger.info(
                    f"{name}loss scaler: skipped {new} step(s) with inf/NaN gradients since the previous "
                    f"line ({total} in all); loss scale now {wrapper.loss_scaler.get_scale():g}"
                )

    def after_train(self, runner: Any) -> None:
        # Losses of the last iterations after the final log line (and without a final checkpoint).
        check_logged_losses(runner)

    def _plan(self, runner: Any, done: int, inner: int) -> int:
        """The next iteration count (``runner.iter + 1``) at which a line may be due."""
        due = []
        if self.interval_exp_name > 0:
            due.append((done // self.interval_exp_name + 1) * self.interval_exp_name)
        if self._by_epoch:
            length = self._epoch_length
            # The next multiple of the interval (past the epoch's end it is a harmless early
            # check: before_train_epoch plans again anyway).
            due.append(done + (inner // self.interval + 1) * self.interval - inner)
            if length and inner < length and (not self.ignore_last or length <= self.interval):
                due.append(done + length - inner)
        else:
            due.append((done // self.interval + 1) * self.interval)
            if not self.ignore_last and done < runner.max_iters:
                due.append(runner.max_iters)
        return min(due) if due else _NEVER

    # ------------------------------------------------------------------ validation and test
    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if (batch_idx + 1) % self.interval == 0:
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "val")
            runner.logger.info(line)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if (batch_idx + 1) % self.interval == 0:
            _, line = runner.log_processor.get_log_after_iter(runner, batch_idx, "test")
            runner.logger.info(line)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        tag, line = runner.log_processor.get_log_after_epoch(runner, len(runner.val_dataloader), "val")
        runner.logger.info(line)
        step = runner.epoch if self.log_metric_by_epoch and runner.log_processor.by_epoch else runner.iter
        # Trackers plot at the global iteration, so val and train curves share one axis.
        runner.visualizer.add_scalars(tag, step=step, global_iter=runner.iter)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        tag, line = runner.log_processor.get_log_after_epoch(runner, len(runner.test_dataloader), "test")
        runner.logger.info(line)
        # As for validation, the scalars go to vis_data/scalars.json; and, as in MMEngine, every
        # metric goes to <log_dir>/<timestamp>.json, for scripts that read test results.
        runner.visualizer.add_scalars(tag, step=runner.iter, global_iter=runner.iter)
        if is_main_process():
            path = os.path.join(runner.log_dir, f"{runner.timestamp}.json")
            os.makedirs(runner.log_dir, exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                json.dump({key: _json_value(value) for key, value in (metrics or tag).items()}, handle, indent=2)
            runner.logger.info(f"test metrics written to {path}")

    # ------------------------------------------------------------------ end of a run
    def after_run(self, runner: Any) -> None:
        # Backends that buffer (TensorBoard) write everything out now; they reopen if used again.
        close = getattr(runner.visualizer, "close", None)
        if close is not None:
            close()
        if self.out_dir is not None and is_main_process():
            self._copy_logs(runner)

    def _copy_logs(self, runner: Any) -> None:
        target_root = os.path.join(
            self.out_dir, os.path.basename(os.path.normpath(runner.work_dir)), os.path.basename(runner.log_dir)
        )
        for folder, _, files in os.walk(runner.log_dir):
            for name in files:
                if not name.endswith(self.out_suffix):
                    continue
                source = os.path.join(folder, name)
                target = os.path.join(target_root, os.path.relpath(source, runner.log_dir))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(source, target)
                if not self.keep_local:
                    os.remove(source)
        runner.logger.info(f"logs copied to {target_root}")


def _what_the_run_does(runner: Any) -> list[str]:
    """One line each: the precision, the global batch size, and whether validation uses EMA
    weights, so a reader of the log need not work them out from the config."""
    wrappers = list(runner.optim_wrapper.values()) if hasattr(runner.optim_wrapper, "values") else [runner.optim_wrapper]
    lines = []
    for wrapper in wrappers:
        dtype = getattr(wrapper, "cast_dtype", None)
        if dtype is None:
            lines.append("precision: float32 (no AMP)")
        else:
            scaler = "a dynamic loss scaler" if getattr(wrapper, "loss_scaler", None) is not None else "no loss scaler"
            lines.append(f"precision: AMP with {str(dtype).replace('torch.', '')} autocast, {scaler}")
        break  # one line: several optimizers share the model's forward
    loader = runner.train_dataloader
    per_process = loader.batch_size or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
    if per_process is not None:
        accumulate = max(int(getattr(w, "accumulative_counts", 1)) for w in wrappers)
        total = runner.world_size * per_process * accumulate
        lines.append(
            f"global batch size: {total} = {runner.world_size} process(es) x batch_size {per_process}"
            f" x accumulative_counts {accumulate}"
        )
    if any(type(hook).__name__ == "EMAHook" for hook in runner.hooks):
        lines.append("validation and test use the EMA weights (EMAHook)")
    return lines


def _loss_scalers(optim_wrapper: Any) -> list[tuple[str, Any]]:
    """(name prefix, wrapper) of each built optimizer wrapper that has a loss scaler."""
    if optim_wrapper is None or isinstance(optim_wrapper, dict):
        return []
    named = optim_wrapper.items() if hasattr(optim_wrapper, "items") else [("", optim_wrapper)]
    return [
        (f"{name}: " if name else "", wrapper)
        for name, wrapper in named
        if getattr(wrapper, "loss_scaler", None) is not None and hasattr(wrapper, "skipped_steps")
    ]


def _runtime_env(runner: Any) -> dict[str, Any]:
    """What this run runs on and with: device, processes, seed, determinism, folders."""
    device = "cpu"
    for parameter in runner.model.parameters():
        device = str(parameter.device)
        break
    if device.startswith("cuda"):
        device += f" ({torch.cuda.get_device_name(parameter.device)})"
    return {
        "device": device,
        "launcher": runner.launcher,
        "distributed": runner.distributed,
        "world size": runner.world_size,
        "seed": runner.seed,
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "experiment": runner.experiment_name,
        "work_dir": runner.work_dir,
        "log_dir": runner.log_dir,
    }


def _json_value(value: Any) -> Any:
    """A metric as JSON can hold it: tensors as numbers or nested lists."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _json_value(item) for key, item in value.items()}
    return str(value)
