"""Weight initialisation: MMEngine's functional helpers, initializers, `initialize` (layer
selection by class and base-class name, override, bias_prob) and the Pretrained initializer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from minirunner.model import (
    WEIGHT_INITIALIZERS,
    BaseModule,
    PretrainedInit,
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    initialize,
    kaiming_init,
    normal_init,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from minirunner.utils import ConfigError


def test_constant_init_fills_weight_and_bias():
    layer = nn.Conv2d(3, 4, 3)
    constant_init(layer, 0.25, bias=-1.5)
    assert torch.all(layer.weight == 0.25) and torch.all(layer.bias == -1.5)


def test_constant_init_skips_a_missing_bias():
    layer = nn.Linear(3, 4, bias=False)
    constant_init(layer, 2.0, bias=1.0)
    assert torch.all(layer.weight == 2.0) and layer.bias is None


def test_uniform_and_normal_init_respect_their_parameters():
    torch.manual_seed(0)
    layer = nn.Linear(100, 100)
    uniform_init(layer, a=2, b=3, bias=7)
    assert layer.weight.min() >= 2 and layer.weight.max() <= 3 and torch.all(layer.bias == 7)
    normal_init(layer, mean=5, std=0.01, bias=0)
    assert abs(layer.weight.mean().item() - 5) < 0.01 and abs(layer.weight.std().item() - 0.01) < 0.002


def test_trunc_normal_init_stays_inside_the_cut():
    layer = nn.Linear(200, 200)
    trunc_normal_init(layer, mean=0, std=1, a=-0.5, b=0.5)
    assert layer.weight.min() >= -0.5 and layer.weight.max() <= 0.5


def test_kaiming_and_xavier_scales():
    torch.manual_seed(0)
    layer = nn.Linear(400, 300)
    kaiming_init(layer)  # fan_out, relu, normal: std = sqrt(2 / fan_out)
    assert abs(layer.weight.std().item() - math.sqrt(2 / 300)) < 0.005
    assert torch.all(layer.bias == 0)
    xavier_init(layer, gain=1, distribution="uniform")  # bound sqrt(6 / (fan_in + fan_out))
    assert layer.weight.abs().max().item() <= math.sqrt(6 / 700) + 1e-6
    caffe2_xavier_init(layer)  # kaiming_uniform a=1 fan_in: bound sqrt(3 / fan_in)
    assert layer.weight.abs().max().item() <= math.sqrt(3 / 400) + 1e-6
    with pytest.raises(ValueError):
        kaiming_init(layer, distribution="gaussian")


def test_bias_init_with_prob_is_the_inverse_sigmoid():
    for prob in (0.01, 0.3, 0.5):
        assert torch.sigmoid(torch.tensor(bias_init_with_prob(prob))).item() == pytest.approx(prob)


def test_the_initializers_are_registered_under_mmengine_names():
    for name in ("Constant", "Xavier", "Normal", "TruncNormal", "Uniform", "Kaiming", "Caffe2Xavier", "Pretrained"):
        assert WEIGHT_INITIALIZERS.get(name) is not None, name


class FooNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Conv2d(3, 16, 3)
        self.reg = nn.Conv2d(16, 10, 3)
        self.cls = nn.Conv2d(16, 5, 3)
        self.fc = nn.Linear(4, 2)


def test_layer_selects_by_class_name_only():
    net = FooNet()
    fc_before = net.fc.weight.clone()
    initialize(net, dict(type="Constant", layer="Conv2d", val=1, bias=2))
    for conv in (net.feat, net.reg, net.cls):
        assert torch.all(conv.weight == 1) and torch.all(conv.bias == 2)
    assert torch.equal(net.fc.weight, fc_before)


def test_list_of_configs_each_with_its_layer():
    net = nn.Sequential(nn.Conv1d(3, 1, 3), nn.Linear(1, 2))
    initialize(net, [dict(type="Constant", layer="Conv1d", val=1), dict(type="Constant", layer="Linear", val=2)])
    assert torch.all(net[0].weight == 1) and torch.all(net[1].weight == 2)


def test_layer_matches_a_direct_base_class_name():
    class MyConv(nn.Conv2d):
        pass

    net = nn.Sequential(MyConv(1, 1, 1))
    initialize(net, dict(type="Constant", layer="Conv2d", val=3))
    assert torch.all(net[0].weight == 3)


def test_no_layer_and_no_override_changes_nothing():
    net = FooNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    initialize(net, dict(type="Constant", val=9))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_override_initialises_the_named_child_as_a_whole():
    net = FooNet()
    initialize(net, dict(type="Constant", val=1, bias=2, layer="Conv2d",
                         override=dict(type="Constant", name="reg", val=3, bias=4)))
    assert torch.all(net.feat.weight == 1) and torch.all(net.cls.weight == 1)
    assert torch.all(net.reg.weight == 3) and torch.all(net.reg.bias == 4)


def test_override_with_only_a_name_takes_the_outer_arguments():
    net = FooNet()
    initialize(net, dict(type="Constant", val=5, bias=6, layer="Conv2d", override=dict(name="fc")))
    assert torch.all(net.fc.weight == 5) and torch.all(net.fc.bias == 6)


def test_override_errors():
    with pytest.raises(ValueError, match="name"):
        initialize(FooNet(), dict(type="Constant", val=1, layer="Conv2d", override=dict(type="Constant", val=2)))
    with pytest.raises(ValueError, match="type"):
        initialize(FooNet(), dict(type="Constant", val=1, layer="Conv2d", override=dict(name="reg", val=2)))
    with pytest.raises(ConfigError, match="head"):
        initialize(FooNet(), dict(type="Constant", val=1, layer="Conv2d", override=dict(name="head")))


def test_bias_prob_sets_the_bias():
    net = FooNet()
    initialize(net, dict(type="Normal", std=0.01, layer="Conv2d", bias_prob=0.01))
    assert torch.allclose(net.cls.bias, torch.full((5,), bias_init_with_prob(0.01)))


def test_wrong_types_raise_type_error():
    with pytest.raises(TypeError):
        initialize(FooNet(), "Constant")
    with pytest.raises(TypeError):
        initialize(FooNet(), dict(type="Constant", val=1, layer=3))
    with pytest.raises(TypeError):
        initialize(FooNet(), dict(type="Constant", val=1, layer="Conv2d", bias_prob=1))


def test_initialize_leaves_the_config_unchanged():
    cfg = dict(type="Constant", val=1, layer="Conv2d", override=dict(name="reg"))
    copy = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    initialize(FooNet(), cfg)
    assert cfg == copy


class UnpicklableByWeightsOnly:
    """A plain class: weights_only loading refuses to construct it."""


def _save(path, state_dict):
    torch.save(dict(meta=dict(epoch=1), state_dict=state_dict), path)
    return str(path)


def test_pretrained_loads_the_state_dict_entry(tmp_path):
    source = FooNet()
    ckpt = _save(tmp_path / "w.pth", source.state_dict())
    net = FooNet()
    initialize(net, dict(type="Pretrained", checkpoint=ckpt))
    assert all(torch.equal(source.state_dict()[k], v) for k, v in net.state_dict().items())


def test_pretrained_with_prefix_loads_only_that_part(tmp_path):
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = FooNet()
            self.head = nn.Linear(2, 2)

    source = Outer()
    ckpt = _save(tmp_path / "w.pth", {f"module.{k}": v for k, v in source.state_dict().items()})
    net = FooNet()
    PretrainedInit(checkpoint=ckpt, prefix="backbone")(net)
    assert torch.equal(net.reg.weight, source.backbone.reg.weight)
    with pytest.raises(ConfigError, match="neck"):
        PretrainedInit(checkpoint=ckpt, prefix="neck.")(FooNet())


def test_pretrained_is_non_strict_and_skips_mismatched_shapes(tmp_path):
    source = FooNet()
    state = dict(source.state_dict())
    state["fc.weight"] = torch.zeros(7, 7)
    state["extra"] = torch.zeros(1)
    ckpt = _save(tmp_path / "w.pth", state)
    net = FooNet()
    fc_before = net.fc.weight.clone()
    PretrainedInit(checkpoint=ckpt)(net)
    assert torch.equal(net.feat.weight, source.feat.weight)
    assert torch.equal(net.fc.weight, fc_before)


def test_pretrained_refuses_urls_and_unsafe_files(tmp_path):
    with pytest.raises(ConfigError, match="URL"):
        PretrainedInit(checkpoint="https://example.com/x.pth")(FooNet())

    path = tmp_path / "unsafe.pth"
    torch.save(dict(state_dict={}, obj=UnpicklableByWeightsOnly()), path)
    from minirunner.checkpoint import UnsafeCheckpointError

    with pytest.raises(UnsafeCheckpointError):
        PretrainedInit(checkpoint=str(path))(FooNet())


def test_pretrained_is_applied_after_the_children(tmp_path):
    """MMEngine applies Pretrained last, so a child's init_cfg cannot overwrite it."""

    class Child(BaseModule):
        def __init__(self) -> None:
            super().__init__(init_cfg=dict(type="Constant", val=0, layer="Linear"))
            self.fc = nn.Linear(2, 2)

    class Parent(BaseModule):
        def __init__(self, init_cfg=None) -> None:
            super().__init__(init_cfg=init_cfg)
            self.child = Child()

    source = Parent()
    nn.init.constant_(source.child.fc.weight, 4.0)
    ckpt = _save(tmp_path / "w.pth", source.state_dict())
    model = Parent(init_cfg=[dict(type="Pretrained", checkpoint=ckpt), dict(type="Constant", val=1, layer="Linear")])
    model.init_weights()
    assert torch.all(model.child.fc.weight == 4.0)
