"""The root registries every minirunner component registers into.

Downstream projects make child registries of these (``Registry('model', parent=MODELS,
scope='myproject')``) so that their names live in their own scope.
"""

from __future__ import annotations

import inspect

import torch

from .build_functions import build_model_from_cfg, build_runner_from_cfg
from .registry import Registry

# As in the reference: RUNNERS.build(cfg) is Runner.from_cfg(cfg) (or runner_type's), and
# MODELS.build accepts a list of configs (a Sequential).
RUNNERS = Registry("runner", build_func=build_runner_from_cfg, locations=["minirunner.runner"])
LOOPS = Registry("loop", locations=["minirunner.runner"])
HOOKS = Registry("hook", locations=["minirunner.hooks"])
MODELS = Registry("model", build_func=build_model_from_cfg, locations=["minirunner.model"])
MODEL_WRAPPERS = Registry("model wrapper", locations=["minirunner.model"])
DATASETS = Registry("dataset", locations=["minirunner.dataset"])
DATA_SAMPLERS = Registry("data sampler", locations=["minirunner.dataset"])
TRANSFORMS = Registry("transform", locations=["minirunner.dataset"])
FUNCTIONS = Registry("function", locations=["minirunner.dataset"])
OPTIMIZERS = Registry("optimizer", locations=["minirunner.optim"])
OPTIM_WRAPPERS = Registry("optim wrapper", locations=["minirunner.optim"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry("optimizer wrapper constructor", locations=["minirunner.optim"])
PARAM_SCHEDULERS = Registry("parameter scheduler", locations=["minirunner.optim"])
METRICS = Registry("metric", locations=["minirunner.evaluator"])
EVALUATOR = Registry("evaluator", locations=["minirunner.evaluator"])
LOG_PROCESSORS = Registry("log processor", locations=["minirunner.runner"])
VISUALIZERS = Registry("visualizer", locations=["minirunner.visualization"])
VISBACKENDS = Registry("vis backend", locations=["minirunner.visualization"])
# The reference's other root registries, so downstream code that makes children of them or
# registers into them imports unchanged.
RUNNER_CONSTRUCTORS = Registry("runner constructor", locations=["minirunner.runner"])
STRATEGIES = Registry("strategy", locations=["minirunner.strategy"])
WEIGHT_INITIALIZERS = Registry("weight initializer", locations=["minirunner.model"])
TASK_UTILS = Registry("task util")
INFERENCERS = Registry("inferencer")


def _register_torch_optimizers() -> None:
    for name, obj in vars(torch.optim).items():
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            OPTIMIZERS.register_module(name=name, module=obj)


_register_torch_optimizers()
