"""The learning-rate schedulers: each family with ``param_name='lr'``.

Each class spells out its arguments (rather than forwarding ``*args``) so that a config
with a misspelled argument gets a "did you mean" from the registry's signature check.
"""

from __future__ import annotations

from typing import Any, Sequence

from minirunner.registry import PARAM_SCHEDULERS

from .chainable import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    PolyParamScheduler,
    StepParamScheduler,
)
from .cosine import CosineAnnealingParamScheduler, CosineRestartParamScheduler
from .one_cycle import OneCycleParamScheduler
from .param_scheduler import INF
from .reduce_on_plateau import ReduceOnPlateauParamScheduler


@PARAM_SCHEDULERS.register_module()
class ConstantLR(ConstantParamScheduler):
    """Multiply the learning rate by ``factor`` until step ``end - 1``.

    See :class:`ConstantParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", factor, begin, end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingLR(CosineAnnealingParamScheduler):
    """Anneal the learning rate along a half cosine to ``eta_min``.

    See :class:`CosineAnnealingParamScheduler` for the arguments.

    Example:
        >>> param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, T_max=100)
    """

    def __init__(self, optimizer: Any, T_max: float | None = None, eta_min: float | None = None,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False, eta_min_ratio: float | None = None) -> None:
        super().__init__(optimizer, "lr", T_max, eta_min, begin, end, last_step, by_epoch,
                         verbose, eta_min_ratio)


@PARAM_SCHEDULERS.register_module()
class CosineRestartLR(CosineRestartParamScheduler):
    """Cosine-anneal the learning rate in cycles with weighted restarts.

    See :class:`CosineRestartParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, periods: list[int], restart_weights: Sequence[float] = (1,),
                 eta_min: float | None = None, eta_min_ratio: float | None = None,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", periods, restart_weights, eta_min, eta_min_ratio,
                         begin, end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class ExponentialLR(ExponentialParamScheduler):
    """Multiply the learning rate by ``gamma`` every step.

    See :class:`ExponentialParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, gamma: float, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", gamma, begin, end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class LinearLR(LinearParamScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` (warm-up).

    See :class:`LinearParamScheduler` for the arguments.

    Example:
        >>> param_scheduler = [
        ...     dict(type='LinearLR', start_factor=0.001, by_epoch=False, end=50),
        ...     dict(type='MultiStepLR', by_epoch=True, milestones=[8, 11], gamma=0.1)]
    """

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", start_factor, end_factor, begin, end, last_step,
                         by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class MultiStepLR(MultiStepParamScheduler):
    """Multiply the learning rate by ``gamma`` at each milestone.

    See :class:`MultiStepParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, milestones: list[int], gamma: float = 0.1,
                 last_step: int = -1, begin: int = 0, end: int = INF, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", milestones, gamma, last_step, begin, end, by_epoch,
                         verbose)


@PARAM_SCHEDULERS.register_module()
class OneCycleLR(OneCycleParamScheduler):
    """Set the learning rate by the 1cycle policy.

    See :class:`OneCycleParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, eta_max: float | Sequence[float] = 0,
                 total_steps: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", eta_max, total_steps, pct_start, anneal_strategy,
                         div_factor, final_div_factor, three_phase, begin, end, last_step,
                         by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class PolyLR(PolyParamScheduler):
    """Decay the learning rate polynomially to ``eta_min``.

    See :class:`PolyParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, eta_min: float = 0, power: float = 1.0, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", eta_min, power, begin, end, last_step, by_epoch,
                         verbose)


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauLR(ReduceOnPlateauParamScheduler):
    """Reduce the learning rate when a validation metric stops improving.

    See :class:`ReduceOnPlateauParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, monitor: str = "loss", rule: str = "less",
                 factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_rule: str = "rel", cooldown: int = 0,
                 min_value: float | Sequence[float] = 0.0, eps: float = 1e-8, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", monitor, rule, factor, patience, threshold,
                         threshold_rule, cooldown, min_value, eps, begin, end, last_step,
                         by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class StepLR(StepParamScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    See :class:`StepParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, "lr", step_size, gamma, begin, end, last_step, by_epoch,
                         verbose)
