"""The momentum schedulers: each family applied to the optimizer's momentum.

SGD-style optimizers keep it in ``momentum``. Adam-style optimizers keep it in
``betas[0]``; for them the scheduler keeps a ``momentum`` key in each param group (as the
reference engine does, so checkpoints look alike), schedules that key, and writes it back
into a new ``betas`` tuple after every change.
"""

from __future__ import annotations

from typing import Any, Sequence

from minirunner.registry import PARAM_SCHEDULERS
from minirunner.utils import ConfigError, quoted_list

from .chainable import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    PolyParamScheduler,
    StepParamScheduler,
)
from .cosine import CosineAnnealingParamScheduler, CosineRestartParamScheduler
from .param_scheduler import INF, _checked_param_groups, _ParamScheduler
from .reduce_on_plateau import ReduceOnPlateauParamScheduler


def _momentum_key(scheduler: _ParamScheduler, optimizer: Any) -> str:
    """Prepare ``optimizer``'s groups for a momentum schedule and return the key to drive."""
    name = type(scheduler).__name__
    groups = _checked_param_groups(name, optimizer)
    raw = getattr(optimizer, "optimizer", optimizer)
    # The optimizer's defaults say what it is; the groups may already hold the mirrored
    # ``momentum`` key of an Adam-style optimizer.
    defaults = getattr(raw, "defaults", None)
    keys = defaults if isinstance(defaults, dict) else groups[0]
    if "momentum" in keys:
        return "momentum"
    if "betas" in keys:
        scheduler._writes_betas = True
        for group in groups:
            group["momentum"] = group["betas"][0]
        return "momentum"
    present = [key for key in groups[0] if key != "params"]
    raise ConfigError(
        f"{name} schedules the momentum, but the optimizer ({type(raw).__name__}) has neither "
        f"'momentum' nor 'betas' in its param groups (keys: {quoted_list(present)}); use an "
        "optimizer with momentum (SGD, RMSprop) or betas (Adam, AdamW, ...), or remove this "
        "scheduler",
        key="optimizer",
    )


@PARAM_SCHEDULERS.register_module()
class ConstantMomentum(ConstantParamScheduler):
    """Multiply the momentum by ``factor`` until step ``end - 1``.

    See :class:`ConstantParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), factor, begin, end,
                         last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class CosineAnnealingMomentum(CosineAnnealingParamScheduler):
    """Anneal the momentum along a half cosine to ``eta_min``.

    See :class:`CosineAnnealingParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, T_max: float | None = None, eta_min: float | None = None,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False, eta_min_ratio: float | None = None) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), T_max, eta_min, begin, end,
                         last_step, by_epoch, verbose, eta_min_ratio)


@PARAM_SCHEDULERS.register_module()
class CosineRestartMomentum(CosineRestartParamScheduler):
    """Cosine-anneal the momentum in cycles with weighted restarts.

    See :class:`CosineRestartParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, periods: list[int], restart_weights: Sequence[float] = (1,),
                 eta_min: float | None = None, eta_min_ratio: float | None = None,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), periods, restart_weights,
                         eta_min, eta_min_ratio, begin, end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class ExponentialMomentum(ExponentialParamScheduler):
    """Multiply the momentum by ``gamma`` every step.

    See :class:`ExponentialParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, gamma: float, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), gamma, begin, end,
                         last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class LinearMomentum(LinearParamScheduler):
    """Scale the momentum linearly from ``start_factor`` to ``end_factor``.

    See :class:`LinearParamScheduler` for the arguments.

    Example:
        >>> param_scheduler = dict(type='LinearMomentum', start_factor=0.001, by_epoch=False,
        ...                        begin=0, end=1000)
    """

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), start_factor, end_factor,
                         begin, end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class MultiStepMomentum(MultiStepParamScheduler):
    """Multiply the momentum by ``gamma`` at each milestone.

    See :class:`MultiStepParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, milestones: list[int], gamma: float = 0.1,
                 last_step: int = -1, begin: int = 0, end: int = INF, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), milestones, gamma,
                         last_step, begin, end, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class PolyMomentum(PolyParamScheduler):
    """Decay the momentum polynomially to ``eta_min``.

    See :class:`PolyParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, eta_min: float = 0, power: float = 1.0, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), eta_min, power, begin, end,
                         last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauMomentum(ReduceOnPlateauParamScheduler):
    """Reduce the momentum when a validation metric stops improving.

    See :class:`ReduceOnPlateauParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, monitor: str = "loss", rule: str = "less",
                 factor: float = 0.1, patience: int = 10, threshold: float = 1e-4,
                 threshold_rule: str = "rel", cooldown: int = 0,
                 min_value: float | Sequence[float] = 0.0, eps: float = 1e-8, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), monitor, rule, factor,
                         patience, threshold, threshold_rule, cooldown, min_value, eps, begin,
                         end, last_step, by_epoch, verbose)


@PARAM_SCHEDULERS.register_module()
class StepMomentum(StepParamScheduler):
    """Multiply the momentum by ``gamma`` every ``step_size`` steps.

    See :class:`StepParamScheduler` for the arguments.
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, begin: int = 0,
                 end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        super().__init__(optimizer, _momentum_key(self, optimizer), step_size, gamma, begin,
                         end, last_step, by_epoch, verbose)
