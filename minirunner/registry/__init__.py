"""Registries: how configs name classes. See :class:`Registry` and :class:`DefaultScope`."""

from .build_functions import build_from_cfg, build_model_from_cfg, build_runner_from_cfg
from .default_scope import DefaultScope, init_default_scope
from .errors import FullKeyConfigError, RegistryKeyError, RegistryTypeError, config_key
from .registry import Registry
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
    INFERENCERS,
    RUNNER_CONSTRUCTORS,
    RUNNERS,
    STRATEGIES,
    TASK_UTILS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
    WEIGHT_INITIALIZERS,
)
from .utils import count_registered_modules, traverse_registry_tree

__all__ = [
    "Registry", "DefaultScope", "init_default_scope",
    "build_from_cfg", "build_model_from_cfg", "build_runner_from_cfg",
    "FullKeyConfigError", "RegistryKeyError", "RegistryTypeError", "config_key",
    "count_registered_modules", "traverse_registry_tree",
    "RUNNERS", "LOOPS", "HOOKS", "MODELS", "MODEL_WRAPPERS", "DATASETS", "DATA_SAMPLERS",
    "TRANSFORMS", "FUNCTIONS", "OPTIMIZERS", "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS", "METRICS", "EVALUATOR", "LOG_PROCESSORS", "VISUALIZERS", "VISBACKENDS",
    "RUNNER_CONSTRUCTORS", "STRATEGIES", "WEIGHT_INITIALIZERS", "TASK_UTILS", "INFERENCERS",
]
