"""`ProgressBarHook`: tqdm bars for the training epoch and the val/test loops, on a terminal."""

from __future__ import annotations

import sys
from typing import Any, Callable

from minirunner.dist import is_main_process
from minirunner.logging.progress import progress_bar
from minirunner.registry import HOOKS

from .hook import Hook


def _stdout_is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Shows a progress bar while training (one per epoch, or one for the whole run when
    training is iteration-based) and while validating or testing.

    Bars are shown only on rank 0 and only when ``sys.stdout`` is a terminal, which is
    checked when the hook is built: in CI, in pipes and in log files there is no bar, and
    the hook is then not called at all (it reports no events to the runner). While a bar is
    open, log lines are printed above it. Per iteration the hook does ``bar.update(1)``.

    Registered in the default hooks as ``progress``; ``default_hooks=dict(progress=None)``
    turns it off.

    Args:
        enabled: force the bars on (True) or off (False); None decides from the terminal.
    """

    # After the logger (same priority, registered later): a log line printed on an
    # iteration is in place before the bar counts that iteration.
    priority = "BELOW_NORMAL"

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = (_stdout_is_terminal() and is_main_process()) if enabled is None else bool(enabled)
        self._bar: Any = None  # the training bar
        self._eval_bar: Any = None  # the val/test bar (it may sit below an open training bar)

    def event_handlers(self) -> dict[str, Callable[..., None]]:
        """No events at all when the bars are off, so the runner never calls this hook."""
        return super().event_handlers() if self.enabled else {}

    # ------------------------------------------------------------------ training
    def before_train_epoch(self, runner: Any) -> None:
        self._close()
        length = _length(runner.train_dataloader)
        if length and runner.max_iters == runner.max_epochs * length:
            # Epoch-based: one bar per epoch, starting where a mid-epoch resume left off.
            desc = f"Epoch {runner.epoch + 1}/{runner.max_epochs}"
            total, initial = length, max(runner.iter - runner.epoch * length, 0)
        else:
            # Iteration-based: the loop has one "epoch", so one bar for the whole run.
            desc, total, initial = "Train", runner.max_iters, runner.iter
        self._bar = progress_bar(total=total, desc=desc, initial=initial)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_train_epoch(self, runner: Any) -> None:
        self._close()

    # ------------------------------------------------------------------ validation and test
    def before_val_epoch(self, runner: Any) -> None:
        self._close_eval()
        self._eval_bar = progress_bar(total=_length(runner.val_dataloader), desc="Val")

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._eval_bar is not None:
            self._eval_bar.update(1)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        self._close_eval()

    def before_test_epoch(self, runner: Any) -> None:
        self._close_eval()
        self._eval_bar = progress_bar(total=_length(runner.test_dataloader), desc="Test")

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._eval_bar is not None:
            self._eval_bar.update(1)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        self._close_eval()

    def after_run(self, runner: Any) -> None:
        self._close()
        self._close_eval()

    # ------------------------------------------------------------------ helpers
    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _close_eval(self) -> None:
        if self._eval_bar is not None:
            self._eval_bar.close()
            self._eval_bar = None


def _length(dataloader: Any) -> int | None:
    try:
        return len(dataloader)
    except TypeError:  # an iterable dataset without a length: a bar that only counts
        return None
