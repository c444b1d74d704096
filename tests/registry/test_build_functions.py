"""build_from_cfg with Config/ConfigDict, build_runner_from_cfg (RUNNERS), build_model_from_cfg
(MODELS), ManagerMixin classes, import_from_location and the registry statistics."""

from __future__ import annotations

import json
import sys
import uuid

import pytest
import torch

from minirunner.config import Config, ConfigDict, ConfigError
from minirunner.registry import (
    MODELS,
    OPTIMIZERS,
    RUNNERS,
    DefaultScope,
    Registry,
    build_from_cfg,
    build_model_from_cfg,
    build_runner_from_cfg,
    config_key,
    count_registered_modules,
    traverse_registry_tree,
)
from minirunner.utils import ManagerMixin


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class Net:
    def __init__(self, depth, width=8):
        self.depth, self.width = depth, width


@pytest.fixture
def reg() -> Registry:
    registry = Registry("model", scope=unique("s"))
    registry.register_module(module=Net)
    return registry


# ---------------------------------------------------------------------------- Config / ConfigDict
def test_build_from_a_whole_config_and_config_dict(reg):
    cfg = Config(dict(type="Net", depth=3))
    net = build_from_cfg(cfg, reg)
    assert (net.depth, net.width) == (3, 8)
    assert cfg.to_dict() == {"type": "Net", "depth": 3}
    net = reg.build(ConfigDict(type="Net", depth=1), default_args=Config(dict(width=2)))
    assert (net.depth, net.width) == (1, 2)
    net = reg.build(dict(type="Net"), default_args=ConfigDict(depth=5))
    assert net.depth == 5


# ---------------------------------------------------------------------------- runners
class FakeRunner:
    """Records what from_cfg received."""

    def __init__(self, cfg):
        self.cfg = cfg

    @classmethod
    def from_cfg(cls, cfg):
        return cls(cfg)


@pytest.fixture
def runners() -> Registry:
    registry = Registry("runner", build_func=build_runner_from_cfg, scope=unique("r"))
    registry.register_module(name="Runner", module=FakeRunner)

    @registry.register_module()
    class CustomRunner(FakeRunner):
        pass

    return registry


def test_runners_registry_uses_the_runner_build_function():
    assert RUNNERS.build_func is build_runner_from_cfg
    assert MODELS.build_func is build_model_from_cfg


def test_runner_build_calls_from_cfg_of_runner_or_runner_type(runners):
    cfg = Config(dict(a=1), filename="/tmp/x/my_config.py")
    runner = runners.build(cfg)
    assert type(runner) is FakeRunner
    assert runner.cfg is cfg  # the Config itself: its filename still names the work dir
    custom = runners.build(dict(runner_type="CustomRunner", a=2))
    assert type(custom).__name__ == "CustomRunner"
    assert custom.cfg == dict(runner_type="CustomRunner", a=2)
    assert type(runners.build(dict(runner_type=FakeRunner))) is FakeRunner


def test_runner_build_drops_the_scope_key_and_keeps_the_config(runners):
    child = Registry("runner", parent=runners, scope=unique("child"))

    @child.register_module()
    class ChildRunner(FakeRunner):
        pass

    cfg = Config(dict(runner_type="ChildRunner", _scope_=child.scope, b=1), filename="/tmp/y/c.py")
    runner = runners.build(cfg)
    assert type(runner) is ChildRunner
    assert "_scope_" not in runner.cfg and runner.cfg["b"] == 1
    assert runner.cfg.filename == cfg.filename
    assert "_scope_" in cfg  # the caller's config is unchanged
    assert DefaultScope.get_current_instance() is None


def test_unknown_runner_type_is_a_key_error_naming_runner_type(runners):
    with pytest.raises(KeyError) as info:
        runners.build(dict(runner_type="CustomRuner"))
    assert isinstance(info.value, ConfigError)
    assert info.value.key == "runner_type"
    assert "Did you mean 'CustomRunner'?" in str(info.value)
    with pytest.raises(TypeError) as info:
        runners.build(dict(runner_type=3))
    assert isinstance(info.value, ConfigError) and info.value.key == "runner_type"
    with pytest.raises(TypeError) as info:
        runners.build(["not a config"])
    assert isinstance(info.value, ConfigError)


def test_runners_build_of_a_real_config_is_runner_from_cfg(tmp_path):
    from runner_support import loader_cfg

    from minirunner.runner import Runner

    cfg = Config(
        dict(
            model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
            work_dir=str(tmp_path),
            train_dataloader=loader_cfg(8, 4, True),
            train_cfg=dict(by_epoch=True, max_epochs=1),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
            default_hooks=dict(checkpoint=None),
            lr=0.1,  # a helper variable: ignored, as Runner.from_cfg does
        )
    )
    runner = RUNNERS.build(cfg)
    assert type(runner) is Runner
    assert runner.work_dir == str(tmp_path)
    assert runner.cfg["lr"] == 0.1


# ---------------------------------------------------------------------------- models
def test_model_list_builds_a_sequential():
    layers = Registry("layer", build_func=build_model_from_cfg, scope=unique("layers"))
    layers.register_module(name="Lin", module=torch.nn.Linear)
    model = layers.build([dict(type="Lin", in_features=2, out_features=3), dict(type="torch.nn.ReLU")])
    assert isinstance(model, torch.nn.Sequential)
    assert isinstance(model[0], torch.nn.Linear) and model[0].out_features == 3
    assert isinstance(model[1], torch.nn.ReLU)
    assert isinstance(layers.build(dict(type="Lin", in_features=1, out_features=1)), torch.nn.Linear)


def test_model_list_error_names_the_item():
    layers = Registry("layer", build_func=build_model_from_cfg, scope=unique("layers"))
    with pytest.raises(KeyError) as info, config_key("model"):
        layers.build([dict(type="torch.nn.ReLU"), dict(type="Relu")])
    assert str(info.value).startswith("model.1.type: 'Relu' is not registered")


# ---------------------------------------------------------------------------- ManagerMixin classes
class Hub(ManagerMixin):
    def __init__(self, name: str, size: int = 1) -> None:
        super().__init__(name)
        self.size = size


def test_manager_classes_are_built_with_get_instance(reg):
    reg.register_module(module=Hub)
    name = unique("hub")
    first = reg.build(dict(type="Hub", name=name, size=3))
    assert first.size == 3 and Hub.get_current_instance() is first
    assert reg.build(dict(type="Hub", name=name)) is first


# ---------------------------------------------------------------------------- locations
def test_import_from_location_is_public_and_imports_once(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = unique("loc")
    (tmp_path / f"{name}.py").write_text("COUNT = [1]\n", encoding="utf-8")
    try:
        registry = Registry("thing", scope=unique("s"), locations=[name])
        assert name not in sys.modules
        registry.import_from_location()
        assert name in sys.modules
        sys.modules[name].COUNT.append(1)
        registry.import_from_location()
        assert sys.modules[name].COUNT == [1, 1]  # not imported again
    finally:
        sys.modules.pop(name, None)


# ---------------------------------------------------------------------------- statistics
def test_traverse_registry_tree_from_any_node():
    root = Registry("thing", scope=unique("root"))
    child = Registry("thing", parent=root, scope=unique("child"))
    root.register_module(module=Net)
    child.register_module(name="AlsoNet", module=Net)
    child.register_module(module=torch.nn.ReLU)
    info = traverse_registry_tree(child, verbose=False)
    folder = "/".join(Net.__module__.split(".")[:-1])
    assert [entry["scope"] for entry in info] == [root.scope, child.scope]
    assert info[0]["num_modules"] == 1 and info[0][folder] == ["Net"]
    assert info[1]["num_modules"] == 2
    assert info[1]["torch/nn/modules"] == ["ReLU"]
    assert info[1][folder] == ["AlsoNet"]


def test_count_registered_modules_covers_root_registries(tmp_path):
    result = count_registered_modules(save_path=str(tmp_path), verbose=False)
    optimizers = result["registries"]["OPTIMIZERS"][0]
    assert optimizers["scope"] == "minirunner"
    assert "SGD" in optimizers["torch/optim"]
    assert result["registries"]["MODELS"][0]["num_modules"] == len(MODELS.module_dict) > 0
    saved = json.loads((tmp_path / "modules_statistic_results.json").read_text(encoding="utf-8"))
    assert saved["registries"]["OPTIMIZERS"][0]["num_modules"] == len(OPTIMIZERS.module_dict)
    assert saved["scan_date"] == result["scan_date"]
