"""Registry.build / build_from_cfg: building objects from configs, and the errors a config author sees."""

from __future__ import annotations

import copy
import uuid

import pytest
import torch

from minirunner.config import Config, ConfigDict, ConfigError
from minirunner.registry import OPTIMIZERS, FullKeyConfigError, Registry, build_from_cfg, config_key


class Net:
    def __init__(self, depth, width=8, act="relu"):
        self.depth = depth
        self.width = width
        self.act = act


def make_pair(a, b=2):
    return (a, b)


class Flexible:
    def __init__(self, required, **kwargs):
        self.required = required
        self.kwargs = kwargs


class Exploding:
    def __init__(self, value=1):
        raise ValueError(f"value must be positive, got {value}")


class RaisesConfigError:
    def __init__(self):
        raise ConfigError("bad inner value", key="inner")


@pytest.fixture
def reg() -> Registry:
    registry = Registry("model", scope=f"s{uuid.uuid4().hex[:8]}")
    for obj in (Net, make_pair, Flexible, Exploding, RaisesConfigError):
        registry.register_module(module=obj)
    return registry


def test_build_by_name(reg):
    net = reg.build(dict(type="Net", depth=3, width=16))
    assert isinstance(net, Net)
    assert (net.depth, net.width, net.act) == (3, 16, "relu")


def test_build_a_function(reg):
    assert reg.build(dict(type="make_pair", a=1)) == (1, 2)


def test_build_with_type_as_class_or_callable(reg):
    net = reg.build(dict(type=Net, depth=2))
    assert isinstance(net, Net) and net.depth == 2
    assert reg.build(dict(type=make_pair, a=5, b=6)) == (5, 6)
    # A class that is not registered anywhere also works.
    assert build_from_cfg(dict(type=torch.nn.Linear, in_features=2, out_features=3), reg).out_features == 3


def test_build_from_cfg_function(reg):
    net = build_from_cfg(dict(type="Net", depth=1), reg, default_args=dict(width=4))
    assert (net.depth, net.width) == (1, 4)


def test_cfg_wins_over_default_args(reg):
    net = reg.build(dict(type="Net", depth=1, width=32), default_args=dict(width=4, act="gelu"))
    assert (net.depth, net.width, net.act) == (1, 32, "gelu")


def test_type_may_come_from_default_args(reg):
    net = reg.build(dict(depth=1), default_args=dict(type="Net"))
    assert isinstance(net, Net)


def test_callers_dicts_are_not_mutated(reg):
    cfg = dict(type="Net", depth=1, act=["a"])
    defaults = dict(width=4, act="gelu")
    cfg_copy, defaults_copy = copy.deepcopy(cfg), copy.deepcopy(defaults)
    reg.build(cfg, default_args=defaults)
    reg.build(cfg, default_args=defaults)  # twice: `type` must still be there
    assert cfg == cfg_copy and defaults == defaults_copy


def test_config_dict_is_not_mutated(reg):
    cfg = Config(dict(model=dict(type="Net", depth=2)))
    reg.build(cfg.model)
    assert cfg.model.to_dict() == {"type": "Net", "depth": 2}
    assert isinstance(reg.build(ConfigDict(type="Net", depth=1)), Net)


def test_build_by_scope_and_import_path(reg):
    assert isinstance(reg.build(dict(type=f"{reg.scope}.Net", depth=1)), Net)
    linear = reg.build(dict(type="torch.nn.Linear", in_features=2, out_features=1))
    assert isinstance(linear, torch.nn.Linear)


def test_unknown_type_names_registry_and_suggests(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(type="Nett", depth=1))
    error = info.value
    message = str(error)
    assert error.key == "type"
    assert message.startswith("type: 'Nett' is not registered in the 'model' registry")
    assert "Did you mean 'Net'?" in message
    assert "Registered names: " in message and "'make_pair'" in message
    assert "register_module" in message and "custom_imports" in message


def test_unknown_optimizer_under_config_key():
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError) as info:
        with config_key("optim_wrapper.optimizer"):
            OPTIMIZERS.build(dict(type="SDG", lr=0.1), default_args=dict(params=params))
    message = str(info.value)
    assert info.value.key == "optim_wrapper.optimizer.type"
    assert message.startswith("optim_wrapper.optimizer.type: 'SDG' is not registered in the 'optimizer' registry")
    assert "Did you mean 'SGD'" in message


def test_case_insensitive_suggestion_comes_first():
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError, match=r"Did you mean 'AdamW'"):
        OPTIMIZERS.build(dict(type="adamw"), default_args=dict(params=params))


def test_nested_config_keys_compose():
    with pytest.raises(ConfigError) as info:
        with config_key("model"):
            with config_key("backbone"):
                raise ConfigError("bad", key="depth")
    assert str(info.value) == "model.backbone.depth: bad"
    with pytest.raises(ConfigError) as info:
        with config_key("model"):
            raise ConfigError("no key here")
    assert str(info.value) == "model: no key here"


def test_full_key_errors_keep_their_key_through_config_key(reg):
    # A loop built under config_key('train_cfg') reports its empty dataloader as
    # 'train_dataloader', not 'train_cfg.train_dataloader'.
    with pytest.raises(FullKeyConfigError) as info:
        with config_key("train_cfg"):
            with config_key("inner"):
                raise FullKeyConfigError("the dataset is empty", key="train_dataloader")
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == "train_dataloader: the dataset is empty"

    class Builds:
        def __init__(self):
            raise FullKeyConfigError("bad", key="val_dataloader")

    reg.register_module(module=Builds)
    with pytest.raises(ConfigError) as info, config_key("val_cfg"):
        reg.build(dict(type="Builds"))
    assert str(info.value) == "val_dataloader: bad"


def test_config_key_leaves_other_errors_alone():
    with pytest.raises(RuntimeError, match="^boom$"):
        with config_key("model"):
            raise RuntimeError("boom")


def test_wrong_argument_names_class_accepted_and_closest(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(type="Net", depth=1, widht=3))
    message = str(info.value)
    assert info.value.key == "widht"
    assert message.startswith("widht: Net got unexpected argument(s) 'widht'")
    assert "it accepts 'act', 'depth', 'width'" in message
    assert "Did you mean 'width'?" in message


def test_wrong_argument_under_config_key():
    params = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ConfigError) as info:
        with config_key("optim_wrapper.optimizer"):
            OPTIMIZERS.build(dict(type="SGD", lr=0.1, momentun=0.9), default_args=dict(params=params))
    message = str(info.value)
    assert message.startswith("optim_wrapper.optimizer.momentun: SGD got unexpected argument(s) 'momentun'")
    assert "Did you mean 'momentum'?" in message
    assert "'nesterov'" in message  # the accepted arguments are listed


def test_several_wrong_arguments(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(type="Net", depth=1, widht=3, ac="x"))
    message = str(info.value)
    assert info.value.key is None
    assert "unexpected argument(s) 'ac', 'widht'" in message
    assert "Did you mean 'width'?" in message and "Did you mean 'act'?" in message


def test_missing_required_argument(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(type="Net", width=3))
    message = str(info.value)
    assert "Net is missing required argument(s) 'depth'" in message
    assert "add them to the config" in message


def test_default_args_fill_required_arguments(reg):
    assert reg.build(dict(type="Net"), default_args=dict(depth=7)).depth == 7


def test_kwargs_callable_is_not_checked(reg):
    obj = reg.build(dict(type="Flexible", required=1, anything=2, other="x"))
    assert obj.required == 1
    assert obj.kwargs == {"anything": 2, "other": "x"}


def test_exception_in_init_becomes_config_error(reg):
    with pytest.raises(ConfigError) as info:
        with config_key("model"):
            reg.build(dict(type="Exploding", value=-1))
    message = str(info.value)
    assert message == "model: building Exploding failed: ValueError: value must be positive, got -1"
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "value must be positive, got -1"


def test_torch_error_in_init_keeps_its_message():
    with pytest.raises(ConfigError) as info:
        OPTIMIZERS.build(dict(type="SGD", lr=-1.0), default_args=dict(params=[torch.nn.Parameter(torch.zeros(1))]))
    assert "building SGD failed: ValueError: Invalid learning rate: -1.0" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_config_error_in_init_is_passed_through(reg):
    with pytest.raises(ConfigError) as info:
        with config_key("model"):
            reg.build(dict(type="RaisesConfigError"))
    assert str(info.value) == "model.inner: bad inner value"
    assert info.value.__cause__ is None


def test_cfg_without_type(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(depth=1, width=2))
    message = str(info.value)
    assert "the config for the 'model' registry has no 'type' key" in message
    assert "(keys: 'depth', 'width')" in message
    assert "add type='<registered name>'" in message


def test_cfg_that_is_not_a_dict(reg):
    with pytest.raises(ConfigError, match=r"expected a dict config for the 'model' registry, got list"):
        reg.build(["Net"])  # type: ignore[arg-type]


def test_type_of_wrong_kind(reg):
    with pytest.raises(ConfigError) as info:
        reg.build(dict(type=3))
    assert str(info.value).startswith("type: 'type' must be a registered name or a class/function, got 3")


def test_default_args_of_wrong_kind(reg):
    with pytest.raises(TypeError, match="default_args must be a dict or None"):
        reg.build(dict(type="Net", depth=1), default_args=[1])  # type: ignore[arg-type]


def test_builtin_without_signature_is_called():
    reg = Registry("fn", scope=f"s{uuid.uuid4().hex[:8]}")
    reg.register_module(name="dict_builtin", module=dict)
    assert reg.build(dict(type="dict_builtin", a=1)) == {"a": 1}
