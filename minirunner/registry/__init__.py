"""Registries: how configs name classes. See :class:`Registry`."""

from .registry import FullKeyConfigError, Registry, build_from_cfg, config_key
from .root import (
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    FUNCTIONS,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    RUNNERS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
)

__all__ = [
    "FullKeyConfigError", "Registry", "build_from_cfg", "config_key",
    "RUNNERS", "LOOPS", "HOOKS", "MODELS", "MODEL_WRAPPERS", "DATASETS", "DATA_SAMPLERS",
    "TRANSFORMS", "FUNCTIONS", "OPTIMIZERS", "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS", "METRICS", "EVALUATOR", "LOG_PROCESSORS", "VISUALIZERS", "VISBACKENDS",
]
