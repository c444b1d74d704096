"""The 1cycle schedule (Smith & Topin, "Super-Convergence", 2017), as torch's OneCycleLR.

The value rises from ``eta_max/div_factor`` to ``eta_max`` over the first ``pct_start`` of
``total_steps``, then falls to ``eta_max/div_factor/final_div_factor``. With
``three_phase=True`` it first falls back to the start value, symmetrically, and only then
to the minimum. Unlike the other schedules it sets the value outright, so it does not
compose with other schedulers of the same parameter.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from minirunner.registry import PARAM_SCHEDULERS
from minirunner.utils import did_you_mean

from .chainable import _is_number, _is_whole
from .param_scheduler import INF, _ParamScheduler, _checked_param_groups

_STRATEGIES = ("cos", "linear")


@PARAM_SCHEDULERS.register_module()
class OneCycleParamScheduler(_ParamScheduler):
    """Set the value by the 1cycle policy.

    Each param group gets ``initial_<param>``, ``max_<param>`` and ``min_<param>`` keys; the
    phases anneal between them.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        eta_max: the peak value, or one per param group.
        total_steps: the length of the cycle. Defaults to ``end - begin``, so it is needed
            when there is no ``end`` (the runner fills ``end`` from the train loop).
        pct_start: the fraction of the cycle spent rising. Defaults to 0.3.
        anneal_strategy: ``'cos'`` or ``'linear'``. Defaults to ``'cos'``.
        div_factor: start value = ``eta_max/div_factor``. Defaults to 25.
        final_div_factor: minimum = start value / ``final_div_factor``. Defaults to 1e4.
        three_phase: fall back to the start value before the final descent.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.

    Example:
        >>> param_scheduler = dict(type='OneCycleLR', eta_max=0.1, total_steps=1000,
        ...                        by_epoch=False)
    """

    _epoch_step_args = ("total_steps",)

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        eta_max: float | Sequence[float] = 0,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        groups = _checked_param_groups(type(self).__name__, optimizer)
        begin, end = self._check_range(begin, end)
        if total_steps is None:
            if end == INF:
                raise self._error(
                    "total_steps",
                    "has neither total_steps nor an end; give total_steps (the length of the "
                    "cycle) or end, which the runner fills with max_iters/max_epochs",
                )
            total_steps = end - begin
        if not _is_whole(total_steps) or total_steps <= 0:
            raise self._error(
                "total_steps", f"got total_steps={total_steps!r}; it must be an int > 0"
            )
        total_steps = int(total_steps)
        if not _is_number(pct_start) or not 0 <= pct_start <= 1:
            raise self._error(
                "pct_start", f"got pct_start={pct_start!r}; it must be a fraction in [0, 1]"
            )
        if float(pct_start * total_steps) - 1 == 0:
            # The phase would span zero steps, and its interpolation divides by its length.
            raise self._error(
                "pct_start",
                f"got pct_start={pct_start} with total_steps={total_steps}, a rising phase of "
                "a single step; raise pct_start or total_steps",
            )
        if anneal_strategy not in _STRATEGIES:
            raise self._error(
                "anneal_strategy",
                f"got anneal_strategy={anneal_strategy!r}; it must be 'cos' or 'linear'."
                f"{did_you_mean(str(anneal_strategy), _STRATEGIES)}",
            )
        for key, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not _is_number(value) or value <= 0:
                raise self._error(key, f"got {key}={value!r}; it must be a number > 0")

        initial_key = f"initial_{param_name}"
        max_key = f"max_{param_name}"
        min_key = f"min_{param_name}"
        rise_end = float(pct_start * total_steps) - 1
        if three_phase:
            phases = [
                [rise_end, initial_key, max_key],
                [float(2 * pct_start * total_steps) - 2, max_key, initial_key],
                [total_steps - 1, initial_key, min_key],
            ]
        else:
            phases = [[rise_end, initial_key, max_key], [total_steps - 1, max_key, min_key]]

        self.eta_max = eta_max
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.three_phase = three_phase
        self._phases = phases
        if last_step == -1:
            for group, peak in zip(groups, self._per_group(groups, optimizer, eta_max)):
                group[initial_key] = peak / div_factor
                group[max_key] = peak
                group[min_key] = group[initial_key] / final_div_factor
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _per_group(self, groups: list, optimizer: Any, eta_max: Any) -> list:
        if not isinstance(eta_max, (list, tuple)):
            if not _is_number(eta_max):
                raise self._error("eta_max", f"got eta_max={eta_max!r}; it must be a number")
            return [eta_max] * len(groups)
        raw = getattr(optimizer, "optimizer", optimizer)
        raw_count = len(getattr(raw, "param_groups", groups))
        values = list(eta_max)
        if len(values) == raw_count and len(groups) == raw_count + 1:
            # The wrapper shows one more group (the optimizer's defaults, logged as base_lr);
            # it follows the last real group, as the reference does for ReduceOnPlateau.
            values.append(values[-1])
        if len(values) != len(groups) or not all(_is_number(v) for v in values):
            raise self._error(
                "eta_max",
                f"got {len(eta_max)} values in eta_max={list(eta_max)!r} for {raw_count} param "
                "groups; give one number, or one per param group",
            )
        return values

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        if t > self.total_steps:
            raise self._error(
                "total_steps",
                f"was stepped {t + 1} times but total_steps={self.total_steps}; raise "
                "total_steps or set end to stop the schedule in time",
            )
        phases = self._phases
        phase_start = 0.0
        for i, (phase_end, from_key, to_key) in enumerate(phases):
            if t <= phase_end or i == len(phases) - 1:
                pct = (t - phase_start) / (phase_end - phase_start)
                break
            phase_start = phase_end
        name = self.param_name
        if self.anneal_strategy == "cos":
            cos_out = math.cos(math.pi * pct) + 1
            for group in groups:
                start, stop = group[from_key], group[to_key]
                group[name] = stop + (start - stop) / 2.0 * cos_out
        else:
            for group in groups:
                start = group[from_key]
                group[name] = (group[to_key] - start) * pct + start
