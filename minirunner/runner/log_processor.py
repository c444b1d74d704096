"""`LogProcessor`: turns the message hub's scalars into log lines and scalar dicts."""

from __future__ import annotations

import datetime
import re
from typing import Any

import torch

from minirunner.registry import LOG_PROCESSORS
from minirunner.utils import ConfigError

_METHODS = ("mean", "min", "max", "current")


@LOG_PROCESSORS.register_module()
class LogProcessor:
    """Formats train, val and test log lines from the runner's message hub.

    A training line (by epoch, then by iteration) looks like::

        Epoch(train)  [1][ 50/113]  lr: 1.0000e-02  eta: 0:00:12  time: 0.0213  data_time: 0.0011  grad_norm: 1.2345  loss: 0.4567
        Iter(train) [  50/1000]  lr: 1.0000e-02  eta: 0:00:12  time: 0.0213  data_time: 0.0011  loss: 0.4567

    Every learning rate in the hub is shown (``gen.lr`` and ``disc.lr`` with several
    optimizers, ``base_lr`` with several param groups); ``memory`` (peak MB since the
    previous line) follows ``data_time`` when CUDA is in use. A validation summary looks like
    ``Epoch(val) [1][10/10]  accuracy/top1: 97.2222  data_time: 0.0011  time: 0.0098``.

    Args:
        window_size: how many recent values smoothed keys average over: an int, 'epoch'
            (the values of the current epoch so far) or 'global' (every value).
        by_epoch: ``Epoch(train) [e][i/n]`` lines when True, ``Iter(train) [i/N]`` otherwise.
        custom_cfg: extra or replaced statistics, as in the reference engine: each item is
            ``dict(data_src='loss', method_name='max', window_size='global', log_name='loss_max')``.
            ``method_name`` is 'mean', 'min', 'max' or 'current' (``method`` is accepted too);
            without ``window_size`` the statistic covers every value; without ``log_name``
            the statistic replaces ``data_src`` itself (once per key).
        num_digits: digits after the point.
        log_with_hierarchy: keep the ``train/`` (``val/``) prefix in the scalar names sent to
            the visualizer; the log line keeps short names.
        mean_pattern: keys matching it are smoothed over the window; the others show their
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
        # Running total of train/time for the ETA, extended at each log line (not re-summed).
        self._time_buffer: Any = None
        self._time_seen = 0
        self._time_sum = 0.0
        self._time_count = 0

    def _check(self) -> None:
        # Keys are relative: the runner builds this under config_key('log_processor').
        _check_window(self.window_size, "window_size", self.by_epoch)
        names: set[str] = set()
        for index, item in enumerate(self.custom_cfg):
            key = f"custom_cfg.{index}"
            if "method" in item and "method_name" not in item:
                item["method_name"] = item.pop("method")
            if "data_src" not in item or "method_name" not in item:
                raise ConfigError(
                    f"each custom_cfg item needs 'data_src' and 'method_name', got {item}", key=key
                )
            if item["method_name"] not in _METHODS:
                raise ConfigError(
                    f"method_name {item['method_name']!r} is unknown; use 'mean', 'min', 'max' or 'current'",
                    key=f"{key}.method_name",
                )
            if item.get("window_size") is not None:
                _check_window(item["window_size"], f"{key}.window_size", self.by_epoch)
            name = item.get("log_name", item["data_src"])
            if name in names:
                raise ConfigError(
                    f"two custom_cfg items write '{name}'; give each statistic of the same data_src "
                    "its own log_name (an item without log_name replaces data_src itself, once)",
                    key=key,
                )
            names.add(name)

    # ------------------------------------------------------------------ public
    def get_log_after_iter(self, runner: Any, batch_idx: int, mode: str) -> tuple[dict, str]:
        """The scalars to send to the visualizer and the log line, after iteration ``batch_idx``.

        ``batch_idx`` is the index within the current epoch (the global iteration for
        iteration-based training). The scalars have short names (``loss``, ``lr``) unless
        ``log_with_hierarchy``; the ETA is in the line only.
        """
        values = self._collect(runner, mode, batch_idx + 1)
        loader_length = _dataloader_length(runner, mode)
        if mode == "train" and not self.by_epoch:
            width = len(str(runner.max_iters))
            prefix = f"Iter(train) [{runner.iter + 1:>{width}}/{runner.max_iters}]"
        elif mode == "train":
            digits = len(str(loader_length))
            # Right-aligned so the columns line up from epoch 1 to max_epochs.
            epoch = f"[{runner.epoch + 1}]".rjust(len(str(runner.max_epochs)) + 4)
            prefix = f"Epoch(train){epoch}[{batch_idx + 1:>{digits}}/{loader_length}]"
        else:
            prefix = self._eval_prefix(runner, mode, f"{batch_idx + 1:>{len(str(loader_length))}}/{loader_length}")
        memory = _max_memory_mb()
        if memory is not None:
            values["memory"] = memory
        parts = []
        lrs = [k for k in values if k.endswith("lr")]
        for key in lrs:
            parts.append(f"{key}: {values[key]:.{self.num_digits}e}")
        if "time" in values:
            if mode == "train":
                parts.append(f"eta: {self._train_eta(runner)}")
            elif loader_length:
                seconds = values["time"] * max(loader_length - batch_idx - 1, 0)
                parts.append(f"eta: {datetime.timedelta(seconds=int(seconds))}")
        first = [k for k in ("time", "data_time", "memory") if k in values]
        norms = [k for k in values if k.endswith("grad_norm")]
        rest = [k for k in values if k not in lrs and k not in first and k not in norms]
        for key in first + norms + rest:
            parts.append(self._format(key, values[key]))
        return self._tag(values, mode), "  ".join([prefix] + parts)

    def get_log_after_epoch(
        self, runner: Any, batch_idx: int, mode: str, with_non_scalar: bool = False
    ) -> tuple[dict, str]:
        """The metrics and the log line at the end of a val or test epoch.

        The line shows every metric: the scalars (the message hub's ``val/...`` scalars),
        then the non-scalar ones (a per-class list, a confusion matrix: the hub's
        ``val/...`` runtime info, where the RuntimeInfoHook puts metrics that are not one
        number; a tensor goes on lines of its own), then ``data_time`` and ``time``, the
        means over the epoch's iterations. ``batch_idx`` is the number of iterations of the
        epoch. The returned dict holds the scalar metrics (``with_non_scalar=True`` adds
        the others), not the timings.
        """
        hub = runner.message_hub
        values: dict[str, Any] = {}
        prefix_len = len(mode) + 1
        for key, buffer in hub.log_scalars.items():
            if not key.startswith(f"{mode}/"):
                continue
            name = key[prefix_len:]
            if name in ("time", "data_time"):
                values[name] = buffer.mean(max(batch_idx, 1))
            else:
                values[name] = buffer.current()
        self._apply_custom(hub, mode, batch_idx, values)
        non_scalars = {
            key[prefix_len:]: value
            for key, value in hub.runtime_info.items()
            if key.startswith(f"{mode}/") and key[prefix_len:] not in values
        }
        loader_length = _dataloader_length(runner, mode)
        prefix = self._eval_prefix(runner, mode, f"{loader_length}/{loader_length}")
        metric_keys = [k for k in values if k not in ("time", "data_time")]
        parts = [self._format(k, values[k]) for k in metric_keys]
        parts += [self._format(k, value) for k, value in non_scalars.items()]
        parts += [self._format(k, values[k]) for k in ("data_time", "time") if k in values]
        metrics = {k: values[k] for k in metric_keys}
        if with_non_scalar:
            metrics.update(non_scalars)
        tag = {(f"{mode}/{k}" if self.log_with_hierarchy else k): v for k, v in metrics.items()}
        return tag, "  ".join([prefix] + parts)

    # ------------------------------------------------------------------ helpers
    def _eval_prefix(self, runner: Any, mode: str, position: str) -> str:
        if self.by_epoch and mode == "val":
            return f"Epoch({mode}) [{runner.epoch}][{position}]"
        if self.by_epoch:
            return f"Epoch({mode}) [{position}]"
        return f"Iter({mode}) [{position}]"

    def _collect(self, runner: Any, mode: str, inner_count: int) -> dict[str, float]:
        values = {}
        hub = runner.message_hub
        window = self._window(self.window_size, inner_count)
        for key, buffer in hub.log_scalars.items():
            if not key.startswith(f"{mode}/"):
                continue
            name = key[len(mode) + 1 :]
            if self.mean_pattern.match(name):
                values[name] = buffer.mean(window)
            elif mode == "train":
                values[name] = buffer.current()
            # Other val/test scalars are the previous evaluation's metrics: stale mid-epoch.
        self._apply_custom(hub, mode, inner_count, values)
        return values

    def _apply_custom(self, hub: Any, mode: str, inner_count: int, values: dict[str, float]) -> None:
        for item in self.custom_cfg:
            buffer = hub.log_scalars.get(f"{mode}/{item['data_src']}")
            if buffer is None:
                continue
            window = item.get("window_size")
            window = None if window is None else self._window(window, inner_count)
            values[item.get("log_name", item["data_src"])] = buffer.statistics(item["method_name"], window)

    def _window(self, window_size: int | str, inner_count: int) -> int | None:
        if window_size == "epoch":
            return max(inner_count, 1)
        if window_size == "global":
            return None
        return int(window_size)

    def _train_eta(self, runner: Any) -> str:
        """Remaining iterations times the mean iteration time so far (the timer's ``eta`` info
        when it provides one)."""
        eta = runner.message_hub.get_info("eta")
        if eta is None:
            buffer = runner.message_hub.log_scalars.get("train/time")
            values = buffer.data[0] if buffer is not None else []
            if buffer is not self._time_buffer or len(values) < self._time_seen:
                # A new hub, or the buffer dropped its oldest values: start the total again.
                self._time_buffer, self._time_seen, self._time_sum = buffer, 0, 0.0
            self._time_sum += sum(values[self._time_seen :])
            self._time_seen = len(values)
            mean = self._time_sum / self._time_seen if self._time_seen else 0.0
            eta = mean * max(runner.max_iters - runner.iter - 1, 0)
        return str(datetime.timedelta(seconds=int(eta)))

    def _format(self, key: str, value: Any) -> str:
        if isinstance(value, float):
            return f"{key}: {value:.{self.num_digits}f}"
        if isinstance(value, torch.Tensor) and value.numel() > 1:
            # On lines of its own, so the rows of a matrix line up.
            return f"{key}: \n{value}\n"
        return f"{key}: {value}"

    def _tag(self, values: dict[str, float], mode: str) -> dict[str, float]:
        return {(f"{mode}/{k}" if self.log_with_hierarchy else k): v for k, v in values.items()}


def _check_window(window: Any, key: str, by_epoch: bool) -> None:
    if window == "epoch" and not by_epoch:
        raise ConfigError(
            "window_size 'epoch' needs by_epoch=True (an iteration-based run has no epochs); "
            "use 'global' or a number of iterations",
            key=key,
        )
    if window in ("epoch", "global") or (isinstance(window, int) and not isinstance(window, bool) and window > 0):
        return
    raise ConfigError(f"window_size must be a positive int, 'epoch' or 'global', got {window!r}", key=key)


def _dataloader_length(runner: Any, mode: str) -> int:
    loader = getattr(runner, f"{mode}_dataloader", None)
    try:
        return len(loader)
    except TypeError:
        return 0


def _max_memory_mb() -> int | None:
    """Peak CUDA memory in MB since the previous call, or None when CUDA is not in use."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    memory = torch.cuda.max_memory_allocated() // (1024 * 1024)
    # As the reference: each line shows the peak of its own stretch of iterations.
    torch.cuda.reset_peak_memory_stats()
    return int(memory)
