"""Parameter schedulers: change an optimizer hyper-parameter (lr, momentum, ...) over training.

Every family exists as ``<Name>ParamScheduler`` (any param group key), ``<Name>LR`` and
``<Name>Momentum``; OneCycle has no momentum form. All are registered in PARAM_SCHEDULERS,
whose build function this package replaces with :func:`build_scheduler_from_cfg` so that
configs may say ``convert_to_iter_based=True``.
"""

from minirunner.registry import PARAM_SCHEDULERS

from .builder import build_param_schedulers, build_scheduler_from_cfg
from .chainable import (
    ConstantParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    PolyParamScheduler,
    StepParamScheduler,
)
from .cosine import CosineAnnealingParamScheduler, CosineRestartParamScheduler
from .lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolyLR,
    ReduceOnPlateauLR,
    StepLR,
)
from .momentum_scheduler import (
    ConstantMomentum,
    CosineAnnealingMomentum,
    CosineRestartMomentum,
    ExponentialMomentum,
    LinearMomentum,
    MultiStepMomentum,
    PolyMomentum,
    ReduceOnPlateauMomentum,
    StepMomentum,
)
from .one_cycle import OneCycleParamScheduler
from .param_scheduler import INF, _ParamScheduler
from .reduce_on_plateau import ReduceOnPlateauParamScheduler

PARAM_SCHEDULERS.build_func = build_scheduler_from_cfg

__all__ = [
    "INF", "_ParamScheduler", "build_param_schedulers", "build_scheduler_from_cfg",
    "ConstantParamScheduler", "CosineAnnealingParamScheduler", "CosineRestartParamScheduler",
    "ExponentialParamScheduler", "LinearParamScheduler", "MultiStepParamScheduler",
    "OneCycleParamScheduler", "PolyParamScheduler", "ReduceOnPlateauParamScheduler",
    "StepParamScheduler",
    "ConstantLR", "CosineAnnealingLR", "CosineRestartLR", "ExponentialLR", "LinearLR",
    "MultiStepLR", "OneCycleLR", "PolyLR", "ReduceOnPlateauLR", "StepLR",
    "ConstantMomentum", "CosineAnnealingMomentum", "CosineRestartMomentum",
    "ExponentialMomentum", "LinearMomentum", "MultiStepMomentum", "PolyMomentum",
    "ReduceOnPlateauMomentum", "StepMomentum",
]
