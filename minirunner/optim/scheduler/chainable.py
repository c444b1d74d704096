"""The multiplicative schedules: Constant, Exponential, Linear, MultiStep, Poly and Step.

Each multiplies the value a param group holds by the ratio between two consecutive points
of its curve, so it composes with any other scheduler active at the same time. The update
expressions follow the reference engine's term for term, so values agree to the last bit.
With ``t = step - begin``, base value ``b`` and ``T = end - begin - 1``, alone they give:

- Constant: ``b*factor`` while ``t < T``, then ``b``.
- Exponential: ``b*gamma**t``.
- Linear: ``b*(start_factor + (end_factor - start_factor)*min(t, T)/T)``.
- MultiStep: ``b*gamma**(number of milestones <= t)``.
- Poly: ``eta_min + (b - eta_min)*(1 - min(t, T)/T)**power``.
- Step: ``b*gamma**(t // step_size)``.
"""

from __future__ import annotations

from typing import Any

from minirunner.registry import PARAM_SCHEDULERS

from .param_scheduler import INF, _ParamScheduler


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    """An int, or a float without a fractional part (``8.0`` from a config is fine)."""
    return _is_number(value) and float(value).is_integer()


@PARAM_SCHEDULERS.register_module()
class ConstantParamScheduler(_ParamScheduler):
    """Multiply the value by ``factor`` from ``begin`` until the last step before ``end``.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        factor: the multiplier, in [0, 1]. Defaults to 1/3.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        factor: float = 1.0 / 3,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not _is_number(factor) or not 0 <= factor <= 1:
            raise self._error("factor", f"got factor={factor!r}; it must be in [0, 1]")
        begin, end = self._check_range(begin, end)
        self.factor = factor
        self.total_iters = end - begin - 1
        # With factor=0: the values the groups held just before step 0 zeroed them, which
        # the last step restores (1/factor cannot).
        self._values_before_start: list | None = None
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        name = self.param_name
        if t == 0:
            multiplier = self.factor
            if multiplier == 0:
                self._values_before_start = [group[name] for group in groups]
        elif t == self.total_iters:
            if self.factor == 0:
                kept = self._values_before_start
                if kept is None or len(kept) != len(groups):
                    kept = self.base_values  # resumed with last_step, without a state dict
                for group, value in zip(groups, kept):
                    group[name] = value
                return
            multiplier = 1.0 / self.factor
        else:
            return
        for group in groups:
            group[name] = group[name] * multiplier


@PARAM_SCHEDULERS.register_module()
class ExponentialParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` at every step after the first.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        gamma: the multiplier per step.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        gamma: float,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not _is_number(gamma) or gamma < 0:
            raise self._error("gamma", f"got gamma={gamma!r}; it must be a number >= 0")
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        if self.last_step == 0:
            return
        name = self.param_name
        gamma = self.gamma
        for group in groups:
            group[name] = group[name] * gamma


@PARAM_SCHEDULERS.register_module()
class LinearParamScheduler(_ParamScheduler):
    """Scale the value by a factor that moves linearly from ``start_factor`` to ``end_factor``.

    The factor reaches ``end_factor`` at step ``end - 1`` (the last step of the range), as in
    the reference engine; torch's LinearLR reaches it one step later.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        start_factor: the factor at ``begin``, in [0, 1]. Defaults to 1/3. 0 warms up from
            zero: the value is 0 at ``begin`` and ``b*end_factor*t/T`` after.
        end_factor: the factor at ``end - 1``, in [0, 1]. Defaults to 1.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.

    Example:
        >>> param_scheduler = dict(type='LinearLR', start_factor=0.001, by_epoch=False, end=50)
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        # The reference's range is [0, 1] for both factors. A start of 0 (warm-up from zero)
        # cannot be multiplied back up step to step, so _update handles it on its own.
        if not _is_number(start_factor) or not 0 <= start_factor <= 1:
            raise self._error(
                "start_factor", f"got start_factor={start_factor!r}; it must be in [0, 1]"
            )
        if not _is_number(end_factor) or not 0 <= end_factor <= 1:
            raise self._error("end_factor", f"got end_factor={end_factor!r}; it must be in [0, 1]")
        begin, end = self._check_range(begin, end)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = end - begin - 1
        # With start_factor=0: the values the groups held just before step 0 zeroed them.
        self._values_before_start: list | None = None
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        start = self.start_factor
        name = self.param_name
        if start == 0 and t <= 1:
            self._update_from_zero(groups, t)
            return
        if t == 0:
            multiplier = start
        else:
            delta = self.end_factor - start
            if start == 0 and delta == 0:
                return  # 0 -> 0: the factor stays 0
            multiplier = 1.0 + delta / (self.total_iters * start + (t - 1) * delta)
        for group in groups:
            group[name] = group[name] * multiplier

    def _update_from_zero(self, groups: list[dict], t: int) -> None:
        # Step 0 of a warm-up from zero multiplies by 0, after which no ratio can grow the
        # value again. So step 0 keeps the values it zeroes, and step 1 sets
        # kept * (factor at step 1); the later steps multiply by ratios as usual. A change
        # another scheduler makes between steps 0 and 1 is lost (it multiplied a zero).
        name = self.param_name
        if t == 0:
            self._values_before_start = [group[name] for group in groups]
            for group in groups:
                group[name] = group[name] * 0.0
            return
        kept = self._values_before_start
        if kept is None or len(kept) != len(groups):
            kept = self.base_values  # resumed with last_step, without a state dict
        factor = self.end_factor / self.total_iters
        for group, value in zip(groups, kept):
            group[name] = value * factor


@PARAM_SCHEDULERS.register_module()
class MultiStepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` at each milestone (steps counted from ``begin``).

    A milestone listed twice multiplies by ``gamma`` twice.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        milestones: steps (from ``begin``) at which to decay, in increasing order.
        gamma: the multiplier at each milestone. Defaults to 0.1.
        last_step, begin, end, by_epoch, verbose: see :class:`_ParamScheduler` (the order
            of arguments is the reference engine's).

    Example:
        >>> param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150],
        ...                        gamma=0.1)
    """

    _epoch_step_args = ("milestones",)

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        milestones: list[int],
        gamma: float = 0.1,
        last_step: int = -1,
        begin: int = 0,
        end: int = INF,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not isinstance(milestones, (list, tuple)) or not all(
            _is_whole(m) and m >= 0 for m in milestones
        ):
            raise self._error(
                "milestones",
                f"got milestones={milestones!r}; it must be a list of step counts (ints >= 0)",
            )
        milestones = [int(m) for m in milestones]
        if any(later < earlier for earlier, later in zip(milestones, milestones[1:])):
            raise self._error(
                "milestones",
                f"got milestones={list(milestones)!r}, which are not in increasing order; "
                f"list them as {sorted(milestones)!r}",
            )
        if not _is_number(gamma):
            raise self._error("gamma", f"got gamma={gamma!r}; it must be a number")
        counts: dict[int, int] = {}
        for milestone in milestones:
            counts[milestone] = counts.get(milestone, 0) + 1
        self.milestones = counts
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        count = self.milestones.get(self.last_step)
        if not count:
            return
        name = self.param_name
        multiplier = self.gamma**count
        for group in groups:
            group[name] = group[name] * multiplier


@PARAM_SCHEDULERS.register_module()
class PolyParamScheduler(_ParamScheduler):
    """Decay the value polynomially to ``eta_min``, reached at step ``end - 1``.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        eta_min: the value at the end. Defaults to 0.
        power: the power of the polynomial. Defaults to 1 (linear).
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.
    """

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        eta_min: float = 0,
        power: float = 1.0,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not _is_number(eta_min):
            raise self._error("eta_min", f"got eta_min={eta_min!r}; it must be a number")
        if not _is_number(power):
            raise self._error("power", f"got power={power!r}; it must be a number")
        begin, end = self._check_range(begin, end)
        self.eta_min = eta_min
        self.power = power
        self.total_iters = end - begin - 1
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        if t == 0:
            return
        name = self.param_name
        eta_min = self.eta_min
        multiplier = (1 - 1 / (self.total_iters - t + 1)) ** self.power
        for group in groups:
            group[name] = (group[name] - eta_min) * multiplier + eta_min


@PARAM_SCHEDULERS.register_module()
class StepParamScheduler(_ParamScheduler):
    """Multiply the value by ``gamma`` every ``step_size`` steps.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        step_size: the number of steps between two decays (> 0).
        gamma: the multiplier. Defaults to 0.1.
        begin, end, last_step, by_epoch, verbose: see :class:`_ParamScheduler`.
    """

    _epoch_step_args = ("step_size",)

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        step_size: int,
        gamma: float = 0.1,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not _is_whole(step_size) or step_size <= 0:
            raise self._error("step_size", f"got step_size={step_size!r}; it must be an int > 0")
        if not _is_number(gamma):
            raise self._error("gamma", f"got gamma={gamma!r}; it must be a number")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _update(self, groups: list[dict]) -> None:
        t = self.last_step
        if t == 0 or t % self.step_size:
            return
        name = self.param_name
        gamma = self.gamma
        for group in groups:
            group[name] = group[name] * gamma
