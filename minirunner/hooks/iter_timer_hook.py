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

    With a compiled model (the config's ``compile``), the first training iteration compiles
    it: that iteration's ``time`` is left out (it would inflate ``time`` and ``eta`` for the
    rest of the run) and the log says how long compiling took instead. After the first
    epoch (iteration-based loops: at the end) the log gives the graph breaks and recompiles
    with their reasons, which explain iterations that are slower than they should be.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self._start = time.perf_counter()
        # Keys built once rather than formatted twice per iteration.
        self._keys = {mode: (f"{mode}/data_time", f"{mode}/time") for mode in ("train", "val", "test")}
        self._compile_watch: CompileWatch | None = None
        self._warmup = False  # the next training iteration compiles the model

    def before_train(self, runner: Any) -> None:
        if is_compiled(runner.model):
            self._compile_watch = CompileWatch()
            self._warmup = True

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
        if self._warmup:
            self._warmup = False
            self._log_warmup(runner, now - self._start)
            now = time.perf_counter()
        else:
            runner.message_hub.update_scalar("train/time", now - self._start)
        self._start = now

    def after_train_epoch(self, runner: Any) -> None:
        watch, self._compile_watch = self._compile_watch, None
        if watch is not None:
            runner.logger.info(f"torch.compile, by iteration {runner.iter}: {watch.summary()}")

    def _log_warmup(self, runner: Any, seconds: float) -> None:
        compiling = self._compile_watch.compile_seconds() if self._compile_watch is not None else None
        spent = f"compiling took {compiling:.1f} s of" if compiling is not None else "compiling is part of"
        runner.logger.info(
            f"torch.compile: {spent} the first iteration's {seconds:.1f} s; that iteration is left out "
            "of time and eta"
        )
