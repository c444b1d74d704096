"""The cosine schedules: CosineAnnealing and CosineRestart.

Both move the value along half cosines toward ``eta_min``. Alone, with ``t = step - begin``
and base value ``b``:

- CosineAnnealing: ``eta_min + (b - eta_min)*(1 + cos(pi*t/T_max))/2``.
- CosineRestart, in cycle ``k`` of length ``p_k`` that starts at step ``c_k``:
  ``eta_min + (b*w_k - eta_min)*(1 + cos(pi*(t - c_k)/p_k))/2`` with ``w_k`` the restart
  weight; after the last cycle the value holds.

Between two steps the value moves by the ratio of the curve's distances to ``eta_min``, so
when another scheduler is active at the same time they compose around ``eta_min`` (the
reference engine's update, kept term for term so values agree to the last bit).
CosineRestart sets the value outright at the first step of every cycle.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from minirunner.registry import PARAM_SCHEDULERS

from .chainable import _is_number, _is_whole
from .param_scheduler import INF, _ParamScheduler


def _check_eta_min(scheduler: _ParamScheduler, eta_min: Any, eta_min_ratio: Any) -> None:
    if eta_min is not None and eta_min_ratio is not None:
        raise scheduler._error(
            "eta_min_ratio",
            f"got both eta_min={eta_min!r} and eta_min_ratio={eta_min_ratio!r}; give one: "
            "eta_min is an absolute value, eta_min_ratio a fraction of each group's base value",
        )
    for key, value in (("eta_min", eta_min), ("eta_min_ratio", eta_min_ratio)):
        if value is not None and not _is_number(value):
            raise scheduler._error(key, f"got {key}={value!r}; it must be a number")


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingParamScheduler(_ParamScheduler):
    """Anneal the value from its base value to ``eta_min`` along a half cosine.

    The cosine has half period ``T_max`` and keeps going past it (the value rises again),
    so ``T_max`` is normally the length of the range, its default.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        T_max: the half period in steps. Defaults to ``end - begin``.
        eta_min: the lowest value. Defaults to 0 unless ``eta_min_ratio`` is given.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.
        eta_min_ratio: the lowest value as a fraction of each group's base value.

    Example:
        >>> param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=10,
        ...                        eta_min_ratio=0.01)
    """

    _epoch_span_args = ("T_max",)

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        T_max: float | None = None,
        eta_min: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
        eta_min_ratio: float | None = None,
    ) -> None:
        _check_eta_min(self, eta_min, eta_min_ratio)
        begin, end = self._check_range(begin, end)
        if not T_max:  # None or 0, as in the reference
            if end == INF:
                raise self._error(
                    "T_max",
                    "has neither T_max nor an end; give T_max (steps to reach eta_min) or "
                    "end (the runner fills end with max_epochs/max_iters)",
                )
            T_max = end - begin
        if not _is_number(T_max) or T_max < 0:
            raise self._error("T_max", f"got T_max={T_max!r}; it must be a number > 0")
        self.T_max = T_max
        self.eta_min = 0.0 if eta_min is None and eta_min_ratio is None else eta_min
        self.eta_min_ratio = eta_min_ratio
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        if t == 0:
            return
        name = self.param_name
        T = self.T_max
        ratio = self.eta_min_ratio
        if (t - 1 - T) % (2 * T) == 0:
            # At the bottom of the curve the ratio below would divide by zero; the value
            # climbs by the curve's first increment instead.
            one_minus_cos = 1 - math.cos(math.pi / T)
            for group, base in zip(groups, self.base_values):
                eta_min = self.eta_min if ratio is None else base * ratio
                group[name] = group[name] + (base - eta_min) * one_minus_cos / 2
            return
        factor = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        for group, base in zip(groups, self.base_values):
            eta_min = self.eta_min if ratio is None else base * ratio
            group[name] = factor * (group[name] - eta_min) + eta_min


@PARAM_SCHEDULERS.register_module()
class CosineRestartParamScheduler(_ParamScheduler):
    """Cosine annealing in cycles, each restarting from the base value times a weight.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        periods: the length of each cycle in steps.
        restart_weights: the weight of the base value at the start of each cycle, one per
            period. Defaults to ``(1,)``.
        eta_min: the lowest value. Give this or ``eta_min_ratio``.
        eta_min_ratio: the lowest value as a fraction of each group's base value.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.

    Example:
        >>> param_scheduler = dict(type='CosineRestartLR', periods=[100, 200],
        ...                        restart_weights=[1, 0.5], eta_min=1e-5, by_epoch=False)
    """

    _epoch_step_args = ("periods",)

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        periods: list[int],
        restart_weights: Sequence[float] = (1,),
        eta_min: float | None = None,
        eta_min_ratio: float | None = None,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        _check_eta_min(self, eta_min, eta_min_ratio)
        if eta_min is None and eta_min_ratio is None:
            raise self._error(
                "eta_min", "needs eta_min (an absolute value) or eta_min_ratio (a fraction of "
                "each group's base value); add one of them",
            )
        if not isinstance(periods, (list, tuple)) or not periods or not all(
            _is_whole(p) and p > 0 for p in periods
        ):
            raise self._error(
                "periods", f"got periods={periods!r}; it must be a non-empty list of ints > 0"
            )
        if not isinstance(restart_weights, (list, tuple)) or not all(
            _is_number(w) for w in restart_weights
        ):
            raise self._error(
                "restart_weights",
                f"got restart_weights={restart_weights!r}; it must be a list of numbers",
            )
        if len(restart_weights) != len(periods):
            raise self._error(
                "restart_weights",
                f"got {len(periods)} periods but {len(restart_weights)} restart_weights; give "
                "one weight per period (e.g. restart_weights="
                f"{[1] * len(periods)!r})",
            )
        self.periods = [int(p) for p in periods]
        self.restart_weights = list(restart_weights)
        self.eta_min = eta_min
        self.eta_min_ratio = eta_min_ratio
        self.cumulative_periods = []
        total = 0
        for period in self.periods:
            total += period
            self.cumulative_periods.append(total)
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        cycle = None
        for i, cycle_end in enumerate(self.cumulative_periods):
            if t < cycle_end:
                cycle = i
                break
        if cycle is None:
            return  # past the last cycle: the value holds
        name = self.param_name
        ratio = self.eta_min_ratio
        cycle_start = 0 if cycle == 0 else self.cumulative_periods[cycle - 1]
        s = t - cycle_start
        if s == 0:
            weight = self.restart_weights[cycle]
            for group, base in zip(groups, self.base_values):
                group[name] = base * weight
            return
        period = self.periods[cycle]
        factor = (1 + math.cos(math.pi * s / period)) / (1 + math.cos(math.pi * (s - 1) / period))
        for group, base in zip(groups, self.base_values):
            eta_min = self.eta_min if ratio is None else base * ratio
            group[name] = factor * (group[name] - eta_min) + eta_min
