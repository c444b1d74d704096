"""`IterTimerHook`: measures iteration and data-loading time."""

from __future__ import annotations

import time
from typing import Any

from minirunner.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class IterTimerHook(Hook):
    """Logs ``time`` (a whole iteration) and ``data_time`` (waiting for the batch), in seconds.

    On a GPU these are host times: the step is not synchronised, so a slow kernel shows up
    in the next iteration's ``data_time`` rather than stalling every iteration to be timed.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._start = time.perf_counter()
        # Keys built once rather than formatted twice per iteration.
        self._keys = {mode: (f"{mode}/data_time", f"{mode}/time") for mode in ("train", "val", "test")}

    def _before_epoch(self, runner: Any, mode: str = "train") -> None:
        self._start = time.perf_counter()

    def _before_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, mode: str = "train") -> None:
        runner.message_hub.update_scalar(self._keys[mode][0], time.perf_counter() - self._start)

    def _after_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None, mode: str = "train"
    ) -> None:
        now = time.perf_counter()
        runner.message_hub.update_scalar(self._keys[mode][1], now - self._start)
        self._start = now

    # The training events, spelled out: they run every iteration, and a direct method is
    # cheaper to call than the generic helper bound to its mode.
    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        runner.message_hub.update_scalar("train/data_time", time.perf_counter() - self._start)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        now = time.perf_counter()
        runner.message_hub.update_scalar("train/time", now - self._start)
        self._start = now
