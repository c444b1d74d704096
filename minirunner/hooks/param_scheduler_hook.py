"""`ParamSchedulerHook`: steps the parameter schedulers."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from minirunner.optim.nonfinite import skip_guards
from minirunner.optim.scheduler.step_order import wrapper_of
from minirunner.registry import HOOKS

from .hook import Hook


def _all_schedulers(param_schedulers: Any) -> Iterable[Any]:
    if param_schedulers is None:
        return []
    if isinstance(param_schedulers, dict):
        return [s for group in param_schedulers.values() for s in group]
    return list(param_schedulers)


@HOOKS.register_module()
class ParamSchedulerHook(Hook):
    """Steps iteration schedulers after each iteration and epoch schedulers after each epoch.

    Schedulers that need metrics (``ReduceOnPlateau*``) step after validation instead.
    With ``optim_wrapper.nonfinite=dict(action='skip')``, an iteration scheduler holds
    while its optimizer wrapper's guard says so, after a skipped step.
    """

    priority = "LOW"

    def __init__(self) -> None:
        self._by_iter: list[Any] = []
        self._by_epoch: list[Any] = []
        self._by_metrics: list[Any] = []
        # (scheduler, guard) for iteration schedulers of wrappers that skip non-finite steps.
        self._holding: list[tuple[Any, Any]] = []
        self._sorted = False  # until before_run sees the built schedulers, keep every event

    def before_run(self, runner: Any) -> None:
        # Sorted once, so each iteration only walks the schedulers it steps.
        self._by_iter, self._by_epoch, self._by_metrics = [], [], []
        for scheduler in _all_schedulers(runner.param_schedulers):
            if getattr(scheduler, "need_val_args", False):
                self._by_metrics.append(scheduler)
            elif scheduler.by_epoch:
                self._by_epoch.append(scheduler)
            else:
                self._by_iter.append(scheduler)
        self._holding = []
        if skip_guards(runner.optim_wrapper):
            for scheduler in self._by_iter:
                guards = skip_guards(wrapper_of(getattr(scheduler, "optimizer", None)))
                self._holding.append((scheduler, guards[0] if guards else None))
        self._sorted = True

    def event_handlers(self) -> dict[str, Callable[..., None]]:
        """Leave out the events with no scheduler to step (the runner re-asks once built)."""
        handlers = super().event_handlers()
        for event, schedulers in (
            ("after_train_iter", self._by_iter),
            ("after_train_epoch", self._by_epoch),
            ("after_val_epoch", self._by_metrics),
        ):
            if self._sorted and not schedulers:
                handlers.pop(event, None)
        # A subclass's own after_train_iter is kept as it is.
        if self._holding and "after_train_iter" in handlers and \
                type(self).after_train_iter is ParamSchedulerHook.after_train_iter:
            handlers["after_train_iter"] = self._after_train_iter_holding
        return handlers

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        for scheduler in self._by_iter:
            scheduler.step()

    def _after_train_iter_holding(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        for scheduler, guard in self._holding:
            if guard is None or not guard.holding():
                scheduler.step()

    def after_train_epoch(self, runner: Any) -> None:
        for scheduler in self._by_epoch:
            scheduler.step()

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if not metrics:
            return
        for scheduler in self._by_metrics:
            scheduler.step(metrics)
