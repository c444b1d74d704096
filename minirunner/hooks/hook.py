"""`Hook`: the base class of everything that runs at fixed points of training."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

# The events a runner calls, in the order they happen in a run.
EVENTS = (
    "before_run",
    "after_load_checkpoint",
    "before_train",
    "before_train_epoch",
    "before_train_iter",
    "after_train_iter",
    "after_train_epoch",
    "before_val",
    "before_val_epoch",
    "before_val_iter",
    "after_val_iter",
    "after_val_epoch",
    "after_val",
    "before_save_checkpoint",
    "after_train",
    "before_test",
    "before_test_epoch",
    "before_test_iter",
    "after_test_iter",
    "after_test_epoch",
    "after_test",
    "after_run",
)

# The events each mode-independent helper stands for (the reference's mapping, used by
# `Hook.get_triggered_stages`).
HELPER_EVENTS = {
    f"_{when}_{what}": [f"{when}_{mode}_{what}" for mode in ("train", "val", "test")]
    for when in ("before", "after")
    for what in ("epoch", "iter")
}

# Which mode-independent helper an event's default implementation calls, so a hook that
# overrides `_after_iter` is dispatched for train, val and test iterations alike.
GENERIC_HELPER = {
    f"{when}_{mode}_{what}": f"_{when}_{what}"
    for when in ("before", "after")
    for mode in ("train", "val", "test")
    for what in ("epoch", "iter")
}


class Hook:
    """Override the events you need; the runner calls only the events a hook overrides.

    Every event takes the runner first. Iteration events get ``batch_idx`` (the index in
    the current epoch) and ``data_batch``; ``after_*_iter`` also gets ``outputs`` (for
    training, the dict of log variables that ``train_step`` returned). A hook's order is
    set by the class attribute ``priority`` (a name such as ``'VERY_LOW'`` or an int in
    0..100; lower runs first), or by the ``priority`` given when registering it.

    Example:
        >>> class PrintLoss(Hook):
        ...     priority = 'LOW'
        ...     def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ...         if self.every_n_train_iters(runner, 100):
        ...             print(float(outputs['loss']))
    """

    priority: int | str = "NORMAL"
    #: Every event, in the order a run calls them (the reference's ``Hook.stages``).
    stages: tuple[str, ...] = EVENTS

    # ------------------------------------------------------------------ run
    def before_run(self, runner: Any) -> None:
        """Before anything is built for training or testing."""

    def after_run(self, runner: Any) -> None:
        """At the very end of ``train()``, ``val()`` or ``test()``."""

    def before_train(self, runner: Any) -> None:
        """Before the first training epoch (after loading a checkpoint)."""

    def after_train(self, runner: Any) -> None:
        """After the last training epoch."""

    def before_val(self, runner: Any) -> None:
        """Before a validation run."""

    def after_val(self, runner: Any) -> None:
        """After a validation run."""

    def before_test(self, runner: Any) -> None:
        """Before a test run."""

    def after_test(self, runner: Any) -> None:
        """After a test run."""

    # ------------------------------------------------------------------ checkpoints
    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Add to (or change) the checkpoint dict before it is written."""

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Read what :meth:`before_save_checkpoint` stored, after a checkpoint is loaded."""

    # ------------------------------------------------------------------ epochs
    def before_train_epoch(self, runner: Any) -> None:
        """Before each training epoch."""
        self._before_epoch(runner, mode="train")

    def before_val_epoch(self, runner: Any) -> None:
        """Before the validation epoch."""
        self._before_epoch(runner, mode="val")

    def before_test_epoch(self, runner: Any) -> None:
        """Before the test epoch."""
        self._before_epoch(runner, mode="test")

    def after_train_epoch(self, runner: Any) -> None:
        """After each training epoch (``runner.epoch`` is still the epoch's 0-based index)."""
        self._after_epoch(runner, mode="train")

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """After the validation epoch, with the computed metrics."""
        self._after_epoch(runner, mode="val")

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """After the test epoch, with the computed metrics."""
        self._after_epoch(runner, mode="test")

    # ------------------------------------------------------------------ iterations
    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Before each training iteration."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="train")

    def before_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Before each validation iteration."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="val")

    def before_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        """Before each test iteration."""
        self._before_iter(runner, batch_idx=batch_idx, data_batch=data_batch, mode="test")

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        """After each training iteration; ``outputs`` is the dict ``train_step`` returned."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="train")

    def after_val_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Sequence | None = None
    ) -> None:
        """After each validation iteration; ``outputs`` are the predictions."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="val")

    def after_test_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Sequence | None = None
    ) -> None:
        """After each test iteration; ``outputs`` are the predictions."""
        self._after_iter(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs, mode="test")

    # ------------------------------------------------------------------ mode-independent helpers
    def _before_epoch(self, runner: Any, mode: str = "train") -> None:
        """Override to act before every epoch, whatever the mode."""

    def _after_epoch(self, runner: Any, mode: str = "train") -> None:
        """Override to act after every epoch, whatever the mode."""

    def _before_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, mode: str = "train") -> None:
        """Override to act before every iteration, whatever the mode."""

    def _after_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None, mode: str = "train"
    ) -> None:
        """Override to act after every iteration, whatever the mode."""

    # ------------------------------------------------------------------ helpers for subclasses
    def every_n_epochs(self, runner: Any, n: int, start: int = 0) -> bool:
        """True after epochs ``n``, ``2n``, ... (counted from 1); with ``start > 0``, after
        epochs ``start``, ``start + n``, ... (the reference's rule, kept so its hooks work)."""
        done = runner.epoch + 1 - start
        return n > 0 and done >= 0 and done % n == 0

    def every_n_inner_iters(self, batch_idx: int, n: int) -> bool:
        """True every ``n`` iterations within an epoch."""
        return n > 0 and (batch_idx + 1) % n == 0

    def every_n_train_iters(self, runner: Any, n: int, start: int = 0) -> bool:
        """True after iterations ``n``, ``2n``, ... (counted from 1); with ``start > 0``,
        after iterations ``start``, ``start + n``, ... (as :meth:`every_n_epochs`)."""
        done = runner.iter + 1 - start
        return n > 0 and done >= 0 and done % n == 0

    def end_of_epoch(self, dataloader: Any, batch_idx: int) -> bool:
        """True on the last iteration of an epoch."""
        return batch_idx + 1 == len(dataloader)

    def is_last_train_epoch(self, runner: Any) -> bool:
        """True during the last training epoch."""
        return runner.epoch + 1 == runner.max_epochs

    def is_last_train_iter(self, runner: Any) -> bool:
        """True on the last training iteration of the run."""
        return runner.iter + 1 == runner.max_iters

    # ------------------------------------------------------------------ dispatch
    def event_handlers(self) -> dict[str, Callable[..., None]]:
        """The callable the runner should call for each event this hook implements.

        A hook that overrides only a generic helper (``_after_iter``) is bound straight to
        it with its mode filled in, which saves a Python call per event on the hot path.
        """
        cls = type(self)
        handlers: dict[str, Callable[..., None]] = {}
        for event in EVENTS:
            if getattr(cls, event) is not getattr(Hook, event):
                handlers[event] = getattr(self, event)
                continue
            helper = GENERIC_HELPER.get(event)
            if helper is None or getattr(cls, helper) is getattr(Hook, helper):
                continue
            if event in ("after_val_epoch", "after_test_epoch"):
                # Their default drops `metrics` before calling the helper: keep that path.
                handlers[event] = getattr(self, event)
            else:
                handlers[event] = functools.partial(getattr(self, helper), mode=event.split("_")[1])
        return handlers

    def get_triggered_stages(self) -> list[str]:
        """The events this hook implements, in the order of :attr:`stages`.

        An event counts when the hook's class overrides it, or overrides the
        mode-independent helper behind it: ``_after_iter`` stands for
        ``after_train_iter``, ``after_val_iter`` and ``after_test_iter``; likewise
        ``_before_iter``, ``_before_epoch`` and ``_after_epoch``.

        Example:
            >>> class Timer(Hook):
            ...     def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode='train'):
            ...         pass
            >>> Timer().get_triggered_stages()
            ['after_train_iter', 'after_val_iter', 'after_test_iter']
        """
        cls = type(self)
        triggered = {event for event in Hook.stages if getattr(cls, event) is not getattr(Hook, event)}
        for helper, events in HELPER_EVENTS.items():
            if getattr(cls, helper) is not getattr(Hook, helper):
                triggered.update(events)
        return [event for event in Hook.stages if event in triggered]

    def state_dict(self) -> dict:
        """What this hook needs to resume exactly (saved in checkpoints under ``hooks``)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
