"""The root registries of DESIGN.md, and the torch optimizers in OPTIMIZERS."""

from __future__ import annotations

import inspect

import pytest
import torch

import minirunner.registry as registry_module
from minirunner.registry import OPTIMIZERS, Registry

ROOT_NAMES = [
    "RUNNERS", "LOOPS", "HOOKS", "MODELS", "MODEL_WRAPPERS", "DATASETS", "DATA_SAMPLERS",
    "TRANSFORMS", "FUNCTIONS", "OPTIMIZERS", "OPTIM_WRAPPERS", "OPTIM_WRAPPER_CONSTRUCTORS",
    "PARAM_SCHEDULERS", "METRICS", "EVALUATOR", "LOG_PROCESSORS", "VISUALIZERS", "VISBACKENDS",
    # MMEngine's other root registries (mmengine/registry/root.py).
    "RUNNER_CONSTRUCTORS", "STRATEGIES", "WEIGHT_INITIALIZERS", "TASK_UTILS", "INFERENCERS",
]  # fmt: skip


@pytest.mark.parametrize("name", ROOT_NAMES)
def test_root_registry_exists(name):
    registry = getattr(registry_module, name)
    assert isinstance(registry, Registry)
    assert registry.scope == "minirunner"
    assert registry.parent is None
    assert name in registry_module.__all__


def test_root_registries_are_distinct():
    registries = [getattr(registry_module, name) for name in ROOT_NAMES]
    assert len({id(r) for r in registries}) == len(ROOT_NAMES)
    assert len({r.name for r in registries}) == len(ROOT_NAMES)


def torch_optimizers() -> list[type]:
    found = []
    for obj in vars(torch.optim).values():
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            found.append(obj)
    return found


def test_every_torch_optimizer_is_registered_by_class_name():
    optimizers = torch_optimizers()
    # The classic ones are there, so the walk itself found something.
    names = {cls.__name__ for cls in optimizers}
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LBFGS"} <= names
    for cls in optimizers:
        assert OPTIMIZERS.get(cls.__name__) is cls, cls.__name__


def test_registered_optimizer_builds():
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = OPTIMIZERS.build(dict(type="AdamW", lr=0.01, weight_decay=0.1), default_args=dict(params=[param]))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert optimizer.param_groups[0]["weight_decay"] == 0.1


def test_child_of_root_registry_uses_its_own_scope():
    child = Registry("optimizer", parent=OPTIMIZERS, scope="test_child_scope_opt")
    try:

        @child.register_module()
        class MyOpt(torch.optim.SGD):
            pass

        assert child.get("SGD") is torch.optim.SGD
        assert child.get("MyOpt") is MyOpt
        assert OPTIMIZERS.get("test_child_scope_opt.MyOpt") is MyOpt
        assert child.get("minirunner.Adam") is torch.optim.Adam
    finally:
        OPTIMIZERS.children.pop("test_child_scope_opt", None)
