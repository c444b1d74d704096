"""`IterTimerHook`: measures iteration and data-loading time."""

from __future__ import annotations

import time
from typing import Any

from minirunner.model.compile import CompileWatch, is_compiled
from minirunner.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class IterTimerHook(Hook):
    """Logs ``time`` (a whole iteration) and ``data_time`` (waiting for the batch), in seconds.

    On a GPU these are host times: the step is not synchronised, so a slow kernel shows up
    in the next iteration's ``data_time`` rather than stalling every iteration to be timed.

    With a compiled model (the config's ``compile``), an iteration in which dynamo compiles
    (the first one; a recompile, e.g. for a short last batch) is left out of ``time``: its
    seconds would inflate ``time`` and ``eta`` for the rest of the run. The log says how long
    compiling took instead, and after the first epoch (iteration-based loops: at the end)
    counts the frames compiled, graph breaks and recompiles, with their reasons.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._start = time.perf_counter()
        # Keys built once rather than formatted twice per iteration.
        self._keys = {mode: (f"{mode}/data_time", f"{mode}/time") for mode in ("train", "val", "test")}
        self._compile_watch: CompileWatch | None = None  # set when the model is compiled
        self._frames_before_iter = 0  # frames dynamo had compiled when this iteration began
        self._compile_seconds = 0.0  # seconds of compiling already logged
        self._report_pending = False  # the first epoch's compile report

    def before_train(self, runner: Any) -> None:
        if is_compiled(runner.model):
            self._compile_watch = CompileWatch()
            self._report_pending = True

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
        if self._compile_watch is not None:
            self._frames_before_iter = self._compile_watch.frames_compiled()

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        now = time.perf_counter()
        watch = self._compile_watch
        if watch is not None and watch.frames_compiled() != self._frames_before_iter:
            self._log_compiling(runner, watch, now - self._start)
            now = time.perf_counter()
        else:
            runner.message_hub.update_scalar("train/time", now - self._start)
        self._start = now

    def after_train_epoch(self, runner: Any) -> None:
        if self._report_pending and self._compile_watch is not None:
            self._report_pending = False
            runner.logger.info(f"torch.compile, by iteration {runner.iter}: {self._compile_watch.summary()}")

    def _log_compiling(self, runner: Any, watch: CompileWatch, seconds: float) -> None:
        total = watch.compile_seconds()
        if total is None:
            spent = "compiling is part of"
        else:
            spent, self._compile_seconds = f"compiling took {total - self._compile_seconds:.1f} s of", total
        runner.logger.info(
            f"torch.compile: {spent} iteration {runner.iter + 1}'s {seconds:.1f} s; that iteration is left "
            "out of time and eta"
        )
