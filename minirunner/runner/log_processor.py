"""`LogProcessor`: turns the message hub's scalars into log lines and scalar dicts."""

from __future__ import annotations

import datetime
import re
from typing import Any

import torch

from minirunner.registry import LOG_PROCESSORS
from minirunner.utils import ConfigError

# Keys printed right after the learning rates, in this order; other keys follow as logged.
_FIRST_KEYS = ("time", "data_time", "memory", "grad_norm")


@LOG_PROCESSORS.register_module()
class LogProcessor:
    """Formats train, val and test log lines from the runner's message hub.

    Args:
        window_size: how many recent values smoothed keys average over: an int, 'epoch'
            (the current epoch's values) or 'global' (every value).
        by_epoch: ``Epoch(train) [e][i/n]`` lines when True, ``Iter(train) [i/N]`` otherwise.
        custom_cfg: extra statistics, e.g. ``[dict(data_src='loss', method='max',
            window_size='global', log_name='loss_max')]``.
        num_digits: digits after the point.
        log_with_hierarchy: keep the ``train/`` prefix in the scalar names sent to backends.
        mean_pattern: keys matching it are smoothed over the window; others show their
            latest value.
    """

    def __init__(
        self,
        window_size: int | str = 10,
        by_epoch: bool = True,
        custom_cfg: list[dict] | None = None,
        num_digits: int = 4,
        log_with_hierarchy: bool = False,
        mean_pattern: str = r".*(loss|time|data_time|grad_norm).*",
    ) -> None:
        self.window_size = window_size
        self.by_epoch = by_epoch
        self.custom_cfg = [dict(c) for c in (custom_cfg or [])]
        self.num_digits = num_digits
        self.log_with_hierarchy = log_with_hierarchy
        self.mean_pattern = re.compile(mean_pattern)
        self._check()

    def _check(self) -> None:
        _check_window(self.window_size, "log_processor.window_size")
        for index, item in enumerate(self.custom_cfg):
            key = f"log_processor.custom_cfg.{index}"
            if "data_src" not in item or "method" not in item:
                raise ConfigError(f"each custom_cfg item needs 'data_src' and 'method', got {item}", key=key)
            if item["method"] not in ("mean", "min", "max", "current"):
                raise ConfigError(
                    f"method {item['method']!r} is unknown; use 'mean', 'min', 'max' or 'current'", key=key
                )
            _check_window(item.get("window_size", self.window_size), f"{key}.window_size")

    # ------------------------------------------------------------------ public
    def get_log_after_iter(self, runner: Any, batch_idx: int, mode: str) -> tuple[dict, str]:
        """The scalars (short names) and the log line after iteration ``batch_idx`` of ``mode``."""
        values = self._collect(runner, mode, batch_idx + 1)
        loader_length = _dataloader_length(runner, mode)
        digits = len(str(loader_length)) if loader_length else 1
        if mode == "train" and not self.by_epoch:
            width = len(str(runner.max_iters))
            prefix = f"Iter(train) [{runner.iter + 1:>{width}}/{runner.max_iters}]"
        elif mode == "train":
            prefix = f"Epoch(train)  [{runner.epoch + 1}][{batch_idx + 1:>{digits}}/{loader_length}]"
        else:
            prefix = self._eval_prefix(runner, mode, f"{batch_idx + 1:>{digits}}/{loader_length}")
        parts = []
        lrs = {k: v for k, v in values.items() if k.endswith("lr")}
        for key, value in lrs.items():
            parts.append(f"{key}: {value:.{self.num_digits}e}")
        if mode == "train" and "time" in values:
            parts.append(f"eta: {self._eta(runner, values['time'])}")
        if mode == "train" and torch.cuda.is_available() and torch.cuda.is_initialized():
            values["memory"] = torch.cuda.max_memory_allocated() // (1024 * 1024)
        ordered = [k for k in _FIRST_KEYS if k in values] + [
            k for k in values if k not in _FIRST_KEYS and k not in lrs
        ]
        for key in ordered:
            parts.append(self._format(key, values[key]))
        return self._tag(values, mode), "  ".join([prefix] + parts)

    def get_log_after_epoch(self, runner: Any, batch_idx: int, mode: str) -> tuple[dict, str]:
        """The metrics and the log line at the end of a val or test epoch."""
        hub = runner.message_hub
        values: dict[str, float] = {}
        for key, buffer in hub.log_scalars.items():
            if not key.startswith(f"{mode}/"):
                continue
            name = key[len(mode) + 1 :]
            if name in ("time", "data_time"):
                values[name] = buffer.mean(batch_idx)
            else:
                values[name] = buffer.current()
        loader_length = _dataloader_length(runner, mode)
        prefix = self._eval_prefix(runner, mode, f"{loader_length}/{loader_length}")
        metric_keys = [k for k in values if k not in ("time", "data_time")]
        parts = [self._format(k, values[k]) for k in metric_keys]
        parts += [self._format(k, values[k]) for k in ("data_time", "time") if k in values]
        metrics_tag = {(f"{mode}/{k}" if self.log_with_hierarchy else k): values[k] for k in metric_keys}
        return metrics_tag, "  ".join([prefix] + parts)

    # ------------------------------------------------------------------ helpers
    def _eval_prefix(self, runner: Any, mode: str, position: str) -> str:
        if self.by_epoch and mode == "val":
            return f"Epoch({mode}) [{runner.epoch}][{position}]"
        if self.by_epoch:
            return f"Epoch({mode}) [{position}]"
        return f"Iter({mode}) [{position}]"

    def _collect(self, runner: Any, mode: str, inner_count: int) -> dict[str, float]:
        values = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            if not key.startswith(f"{mode}/"):
                continue
            name = key[len(mode) + 1 :]
            if self.mean_pattern.match(name):
                values[name] = buffer.mean(self._window(self.window_size, inner_count))
            elif mode == "train":
                values[name] = buffer.current()
            # Other val/test scalars are the previous evaluation's metrics: stale mid-epoch.
        for item in self.custom_cfg:
            source = f"{mode}/{item['data_src']}"
            if source not in runner.message_hub.log_scalars:
                continue
            buffer = runner.message_hub.get_scalar(source)
            window = self._window(item.get("window_size", self.window_size), inner_count)
            name = item.get("log_name", f"{item['data_src']}_{item['method']}")
            values[name] = buffer.statistics(item["method"], window)
        return values

    def _window(self, window_size: int | str, inner_count: int) -> int | None:
        if window_size == "epoch":
            return inner_count
        if window_size == "global":
            return None
        return int(window_size)

    def _eta(self, runner: Any, time_per_iter: float) -> str:
        remaining = max(runner.max_iters - runner.iter - 1, 0)
        return str(datetime.timedelta(seconds=int(time_per_iter * remaining)))

    def _format(self, key: str, value: Any) -> str:
        if isinstance(value, float):
            return f"{key}: {value:.{self.num_digits}f}"
        return f"{key}: {value}"

    def _tag(self, values: dict[str, float], mode: str) -> dict[str, float]:
        return {(f"{mode}/{k}" if self.log_with_hierarchy else k): v for k, v in values.items()}


def _check_window(window: Any, key: str) -> None:
    if window in ("epoch", "global") or (isinstance(window, int) and not isinstance(window, bool) and window > 0):
        return
    raise ConfigError(f"window_size must be a positive int, 'epoch' or 'global', got {window!r}", key=key)


def _dataloader_length(runner: Any, mode: str) -> int:
    loader = getattr(runner, f"{mode}_dataloader", None)
    try:
        return len(loader)
    except TypeError:
        return 0
