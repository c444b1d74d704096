"""DefaultOptimWrapperConstructor: the per-parameter rules of ``paramwise_cfg``.

Every test builds the optimizer over a model holding every kind of layer the rules
distinguish and compares the lr and weight_decay of each parameter with values written
out by hand (base lr 0.1, base weight decay 0.01).
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import minirunner.optim.wrappers  # noqa: F401  (registers the wrappers)
from minirunner.optim.constructors import DefaultOptimWrapperConstructor
from minirunner.optim.constructors.default_constructor import (
    is_deformable_conv,
    is_depthwise_conv,
    is_norm_layer,
)
from minirunner.utils import ConfigError

LR = 0.1
WD = 0.01


class ModulatedDeformConv2d(nn.Module):
    """Stands in for mmcv's class of the same name: recognised by its name only."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))


class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """Like mmcv's: the deformable conv owns the conv that predicts its offsets."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels)
        self.conv_offset = nn.Conv2d(in_channels, 3, 1)


class Sub(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(2, 2, 3, groups=2)  # depthwise, with bias
        self.gn = nn.GroupNorm(1, 2)
        self.param1 = nn.Parameter(torch.ones(2))  # nested 1-D parameter


class EveryLayerModel(nn.Module):
    def __init__(self, shared: bool = False) -> None:
        super().__init__()
        self.param1 = nn.Parameter(torch.ones(3))  # 1-D parameter of the root
        self.conv1 = nn.Conv2d(3, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 2, 1)
        self.conv_in1 = nn.Conv2d(1, 2, 1)  # in_channels == groups == 1: depthwise by the rule
        self.bn = nn.BatchNorm2d(2)
        self.ln = nn.LayerNorm(2)
        self.inorm = nn.InstanceNorm2d(2, affine=True)
        self.sub = Sub()
        self.dcn = ModulatedDeformConv2dPack(2, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.fc = nn.Linear(2, 2)
        if shared:
            self.tied = nn.Linear(2, 2, bias=False)
            self.tied.weight = self.fc.weight


TRAINABLE = [
    "param1", "conv1.weight", "conv2.weight", "conv2.bias", "conv_in1.weight", "conv_in1.bias",
    "bn.weight", "bn.bias", "ln.weight", "ln.bias", "inorm.weight", "inorm.bias",
    "sub.param1", "sub.dw.weight", "sub.dw.bias", "sub.gn.weight", "sub.gn.bias",
    "dcn.weight", "dcn.bias", "dcn.conv_offset.weight", "dcn.conv_offset.bias",
    "fc.weight", "fc.bias",
]


def build(paramwise_cfg, model=None, optimizer=None, **wrapper_cfg):
    model = model if model is not None else EveryLayerModel()
    optimizer = optimizer or dict(type="SGD", lr=LR, momentum=0.9, weight_decay=WD)
    constructor = DefaultOptimWrapperConstructor(
        dict(optimizer=optimizer, **wrapper_cfg), paramwise_cfg
    )
    return model, constructor(model)


def settings(model, wrapper):
    """{parameter name: (lr, weight_decay)} as the optimizer will apply them."""
    names = {id(p): n for n, p in model.named_parameters()}
    result = {}
    for group in wrapper.optimizer.param_groups:
        assert len(group["params"]) == 1, "expected one param group per parameter"
        result[names[id(group["params"][0])]] = (group["lr"], group["weight_decay"])
    return result


def expect(overrides=None):
    """Every trainable parameter at (LR, WD) unless ``overrides`` says otherwise."""
    values = {name: (LR, WD) for name in TRAINABLE}
    values.update(overrides or {})
    return values


def assert_settings(actual, expected):
    assert list(actual) == list(expected), "parameters or their order differ"
    for name, (lr, wd) in expected.items():
        assert actual[name][0] == pytest.approx(lr, abs=1e-12), f"lr of {name}"
        assert actual[name][1] == pytest.approx(wd, abs=1e-12), f"weight_decay of {name}"


@pytest.fixture
def log_lines():
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def test_layer_classification():
    model = EveryLayerModel()
    assert [is_norm_layer(m) for m in (model.bn, model.ln, model.inorm, model.sub.gn)] == [True] * 4
    assert is_norm_layer(nn.SyncBatchNorm(2)) and not is_norm_layer(model.conv1)
    assert is_depthwise_conv(model.sub.dw) and is_depthwise_conv(model.conv_in1)
    assert not is_depthwise_conv(model.conv2)
    assert not is_depthwise_conv(nn.Conv1d(2, 2, 1, groups=2))
    assert is_deformable_conv(model.dcn) and not is_deformable_conv(model.dcn.conv_offset)

    class DeformConv2d(nn.Module):  # torchvision's name
        pass

    assert is_deformable_conv(DeformConv2d())


def test_without_paramwise_cfg_one_group_with_every_parameter():
    model, wrapper = build(None)
    groups = wrapper.optimizer.param_groups
    assert len(groups) == 1
    # model.parameters() as torch would take it: frozen parameters included.
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in model.parameters()]
    assert groups[0]["lr"] == LR and groups[0]["weight_decay"] == WD
    # An empty dict counts as "not given", as in the reference.
    _, wrapper = build({})
    assert len(wrapper.optimizer.param_groups) == 1


def test_paramwise_cfg_leaves_frozen_parameters_out(log_lines):
    model, wrapper = build(dict(bypass_duplicate=False))
    actual = settings(model, wrapper)
    assert "frozen.weight" not in actual and "frozen.bias" not in actual
    assert_settings(actual, expect())
    # No option changed anything, so nothing is logged.
    assert not [line for line in log_lines if line.startswith("paramwise_options")]


def test_bias_lr_mult_alone():
    model, wrapper = build(dict(bias_lr_mult=2.0))
    # Norm biases and the bias of a deformable conv's offset layer are left alone.
    assert_settings(settings(model, wrapper), expect({
        "conv2.bias": (0.2, WD), "conv_in1.bias": (0.2, WD), "sub.dw.bias": (0.2, WD),
        "dcn.bias": (0.2, WD), "fc.bias": (0.2, WD),
    }))


def test_bias_decay_mult_alone():
    model, wrapper = build(dict(bias_decay_mult=0.5))
    # Without norm_decay_mult the chain reaches the bias rule for norm biases too; the
    # depthwise conv's bias takes it (DESIGN.md); the offset layer's bias does not.
    assert_settings(settings(model, wrapper), expect({
        "conv2.bias": (LR, 0.005), "conv_in1.bias": (LR, 0.005), "bn.bias": (LR, 0.005),
        "ln.bias": (LR, 0.005), "inorm.bias": (LR, 0.005), "sub.dw.bias": (LR, 0.005),
        "sub.gn.bias": (LR, 0.005), "dcn.bias": (LR, 0.005), "fc.bias": (LR, 0.005),
    }))


def test_norm_decay_mult_alone(log_lines):
    model, wrapper = build(dict(norm_decay_mult=0.0))
    norm = ["bn", "ln", "inorm", "sub.gn"]
    assert_settings(settings(model, wrapper), expect(
        {f"{n}.{p}": (LR, 0.0) for n in norm for p in ("weight", "bias")}
    ))
    assert [line for line in log_lines if line.startswith("paramwise_options")] == [
        f"paramwise_options -- {n}.{p}:weight_decay=0.0" for n in norm for p in ("weight", "bias")
    ]


def test_flat_decay_mult_alone():
    model, wrapper = build(dict(flat_decay_mult=0.5))
    flat = [
        "param1", "conv2.bias", "conv_in1.bias", "bn.weight", "bn.bias", "ln.weight", "ln.bias",
        "inorm.weight", "inorm.bias", "sub.param1", "sub.dw.bias", "sub.gn.weight",
        "sub.gn.bias", "dcn.bias", "fc.bias",
    ]  # every 1-D parameter except the offset layer's bias
    assert_settings(settings(model, wrapper), expect({n: (LR, 0.005) for n in flat}))


def test_dwconv_decay_mult_alone():
    model, wrapper = build(dict(dwconv_decay_mult=0.5))
    assert_settings(settings(model, wrapper), expect({
        "conv_in1.weight": (LR, 0.005), "conv_in1.bias": (LR, 0.005),
        "sub.dw.weight": (LR, 0.005), "sub.dw.bias": (LR, 0.005),
    }))


def test_dcn_offset_lr_mult_alone():
    model, wrapper = build(dict(dcn_offset_lr_mult=0.1))
    assert_settings(settings(model, wrapper), expect({
        "dcn.conv_offset.weight": (0.01, WD), "dcn.conv_offset.bias": (0.01, WD),
    }))


def test_top_level_lr_mult_and_decay_mult_scale_everything():
    model, wrapper = build(dict(lr_mult=0.5))
    assert_settings(settings(model, wrapper), {n: (0.05, WD) for n in TRAINABLE})
    model, wrapper = build(dict(decay_mult=2.0))
    assert_settings(settings(model, wrapper), {n: (LR, 0.02) for n in TRAINABLE})


def test_rule_precedence_norm_before_bias_before_dwconv_before_flat():
    model, wrapper = build(dict(
        norm_decay_mult=0.0, bias_decay_mult=0.5, dwconv_decay_mult=0.25, flat_decay_mult=0.1,
    ))
    assert_settings(settings(model, wrapper), expect({
        "param1": (LR, 0.001),
        "conv2.bias": (LR, 0.005),
        "conv_in1.weight": (LR, 0.0025), "conv_in1.bias": (LR, 0.005),  # bias rule first
        "bn.weight": (LR, 0.0), "bn.bias": (LR, 0.0), "ln.weight": (LR, 0.0),
        "ln.bias": (LR, 0.0), "inorm.weight": (LR, 0.0), "inorm.bias": (LR, 0.0),
        "sub.param1": (LR, 0.001), "sub.dw.weight": (LR, 0.0025), "sub.dw.bias": (LR, 0.005),
        "sub.gn.weight": (LR, 0.0), "sub.gn.bias": (LR, 0.0),
        "dcn.bias": (LR, 0.005), "fc.bias": (LR, 0.005),
    }))


def test_every_option_together(log_lines):
    model = EveryLayerModel(shared=True)
    model, wrapper = build(dict(
        lr_mult=0.5, decay_mult=2.0, bias_lr_mult=2.0, bias_decay_mult=0.5, norm_decay_mult=0.0,
        dwconv_decay_mult=0.25, flat_decay_mult=0.1, dcn_offset_lr_mult=0.1,
        bypass_duplicate=True, custom_keys={"fc": dict(lr_mult=3.0, decay_mult=0.0)},
    ), model=model)
    norm = {
        f"{n}.{p}": (0.05, 0.0) for n in ("bn", "ln", "inorm", "sub.gn") for p in ("weight", "bias")
    }
    expected = {
        "param1": (0.05, 0.002),  # flat: 0.01 * 2 * 0.1
        "conv1.weight": (0.05, 0.02),
        "conv2.weight": (0.05, 0.02), "conv2.bias": (0.1, 0.01),
        "conv_in1.weight": (0.05, 0.005), "conv_in1.bias": (0.1, 0.01),
        "bn.weight": norm["bn.weight"], "bn.bias": norm["bn.bias"],
        "ln.weight": norm["ln.weight"], "ln.bias": norm["ln.bias"],
        "inorm.weight": norm["inorm.weight"], "inorm.bias": norm["inorm.bias"],
        "sub.param1": (0.05, 0.002), "sub.dw.weight": (0.05, 0.005), "sub.dw.bias": (0.1, 0.01),
        "sub.gn.weight": norm["sub.gn.weight"], "sub.gn.bias": norm["sub.gn.bias"],
        "dcn.weight": (0.05, 0.02), "dcn.bias": (0.1, 0.01),
        "dcn.conv_offset.weight": (0.005, 0.02), "dcn.conv_offset.bias": (0.005, 0.02),
        # custom_keys replaces every rule, the top-level multipliers included.
        "fc.weight": (0.3, 0.0), "fc.bias": (0.3, 0.0),
    }
    assert_settings(settings(model, wrapper), expected)
    # tied.weight is fc.weight: skipped once, with a warning naming both.
    assert len(wrapper.optimizer.param_groups) == len(TRAINABLE)
    assert any("tied.weight" in line and "fc.weight" in line for line in log_lines)


def test_custom_keys_precedence():
    custom_keys = {
        "sub": dict(lr_mult=2.0),
        "b.dw": dict(lr_mult=5.0),  # match sub.dw.* but lose to the longer keys
        "dw.w": dict(lr_mult=7.0),
        "sub.dw.bias": dict(lr_mult=9.0),  # longest key wins
        "bn": dict(lr_mult=1.0),
        "sub.dw": dict(lr_mult=3.0, momentum=0.5),  # shorter than "sub.dw.bias"
    }
    model, wrapper = build(dict(
        custom_keys=custom_keys, bias_lr_mult=10.0, norm_decay_mult=0.0, lr_mult=0.5,
    ))
    norm_zero = {f"{n}.{p}": (0.05, 0.0) for n in ("ln", "inorm") for p in ("weight", "bias")}
    expected = expect({n: (0.05, WD) for n in TRAINABLE})
    expected.update(norm_zero)
    expected.update({
        "conv2.bias": (0.5, WD), "conv_in1.bias": (0.5, WD), "dcn.bias": (0.5, WD),
        "fc.bias": (0.5, WD),
        # Matched keys: other rules (bias_lr_mult, norm_decay_mult, lr_mult) are skipped.
        "bn.weight": (0.1, WD), "bn.bias": (0.1, WD),
        "sub.param1": (0.2, WD), "sub.gn.weight": (0.2, WD), "sub.gn.bias": (0.2, WD),
        "sub.dw.weight": (0.3, WD),  # "sub.dw" (6) beats "b.dw" and "dw.w" (4)
        "sub.dw.bias": (0.9, WD),
    })
    actual = settings(model, wrapper)
    assert_settings(actual, expected)

    groups = {id(g["params"][0]): g for g in wrapper.optimizer.param_groups}
    dw_weight = groups[id(model.sub.dw.weight)]
    # Every entry of the matched dict is copied into the group, optimizer options included.
    assert dw_weight["momentum"] == 0.5 and dw_weight["lr_mult"] == 3.0
    assert groups[id(model.sub.dw.bias)]["momentum"] == 0.9  # not matched by "sub.dw"'s dict
    assert "lr_mult" not in groups[id(model.conv1.weight)]


def test_custom_keys_tie_goes_to_alphabetically_first_key():
    model = nn.Sequential()
    model.add_module("ab", nn.Linear(1, 1))
    # Both keys have length 2 and match "ab.weight"; "ab" < "b." alphabetically.
    for order in (["b.", "ab"], ["ab", "b."]):
        mults = {"ab": 2.0, "b.": 4.0}
        custom_keys = {key: dict(lr_mult=mults[key]) for key in order}
        _, wrapper = build(dict(custom_keys=custom_keys), model=model)
        assert [g["lr"] for g in wrapper.optimizer.param_groups] == [0.2, 0.2]


def test_custom_keys_without_weight_decay_sets_only_lr():
    model = nn.Linear(1, 1)
    _, wrapper = build(
        dict(custom_keys={"bias": dict(lr_mult=0.5)}), model=model,
        optimizer=dict(type="SGD", lr=LR),
    )
    weight, bias = wrapper.optimizer.param_groups
    assert weight["lr"] == LR and bias["lr"] == 0.05
    assert weight["weight_decay"] == 0 and bias["weight_decay"] == 0


def test_group_names_use_module_path_and_lr_default_from_optimizer_class():
    # Adam without lr: the multipliers apply to Adam's own default (1e-3).
    model = nn.Sequential(nn.Linear(1, 1))
    _, wrapper = build(dict(bias_lr_mult=2.0), model=model, optimizer=dict(type="Adam"))
    assert [g["lr"] for g in wrapper.optimizer.param_groups] == [1e-3, 2e-3]


def test_shared_parameter_without_bypass_duplicate_is_an_error():
    with pytest.raises(ConfigError) as error:
        build(dict(norm_decay_mult=0.0), model=EveryLayerModel(shared=True))
    message = str(error.value)
    assert message.startswith("paramwise_cfg: ")
    assert "'tied.weight'" in message and "'fc.weight'" in message
    assert "bypass_duplicate=True" in message


def test_bypass_duplicate_keeps_the_first_occurrence(log_lines):
    model = EveryLayerModel(shared=True)
    model, wrapper = build(dict(bypass_duplicate=True, custom_keys={"tied": dict(lr_mult=5.0)}),
                           model=model)
    groups = wrapper.optimizer.param_groups
    assert len(groups) == len(TRAINABLE)
    fc_group = next(g for g in groups if g["params"][0] is model.fc.weight)
    assert fc_group["lr"] == LR  # fc's settings, not tied's
    warning = [line for line in log_lines if "bypass_duplicate" in line]
    assert len(warning) == 1 and "'tied.weight'" in warning[0]


def test_subclass_sees_base_attributes_and_can_add_groups_of_its_own():
    class HeadFirst(DefaultOptimWrapperConstructor):
        extra_paramwise_keys = ("head_lr",)

        def add_params(self, params, module, prefix="", is_dcn_module=None):
            if prefix == "" and hasattr(module, "fc"):
                params.append({"params": [module.fc.weight], "lr": self.paramwise_cfg["head_lr"]})
            super().add_params(params, module, prefix, is_dcn_module)

    constructor = HeadFirst(
        dict(optimizer=dict(type="SGD", lr=LR, weight_decay=WD)),
        dict(head_lr=0.7, bypass_duplicate=True),
    )
    assert constructor.base_lr == LR and constructor.base_wd == WD
    assert constructor.optimizer_cfg == dict(type="SGD", lr=LR, weight_decay=WD)
    assert "optimizer" not in constructor.optim_wrapper_cfg
    model = EveryLayerModel()
    wrapper = constructor(model)
    groups = wrapper.optimizer.param_groups
    # The group the subclass appended counts as "already there" for bypass_duplicate.
    assert groups[0]["params"][0] is model.fc.weight and groups[0]["lr"] == 0.7
    assert sum(1 for g in groups if g["params"][0] is model.fc.weight) == 1


def test_logged_options_for_every_rule(log_lines):
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(2, 2, 1, groups=2))
    model.add_module("bn", nn.BatchNorm2d(2))
    build(dict(lr_mult=0.5, bias_lr_mult=2.0, dwconv_decay_mult=0.0, norm_decay_mult=0.5),
          model=model, optimizer=dict(type="SGD", lr=0.4, weight_decay=0.2))
    assert [line for line in log_lines if line.startswith("paramwise_options")] == [
        "paramwise_options -- conv.weight:lr=0.2",
        "paramwise_options -- conv.weight:weight_decay=0.0",
        "paramwise_options -- conv.bias:lr=0.4",
        "paramwise_options -- conv.bias:weight_decay=0.0",
        "paramwise_options -- bn.weight:lr=0.2",
        "paramwise_options -- bn.weight:weight_decay=0.1",
        "paramwise_options -- bn.bias:lr=0.2",
        "paramwise_options -- bn.bias:weight_decay=0.1",
    ]


def test_groups_train_with_their_own_settings():
    """One SGD step with the groups equals a hand-written step with the same lr/wd."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    reference = [p.detach().clone() for p in model.parameters()]
    _, wrapper = build(dict(bias_lr_mult=2.0, norm_decay_mult=0.0), model=model,
                       optimizer=dict(type="SGD", lr=0.1, weight_decay=0.5))
    loss = model(torch.ones(4, 3)).pow(2).sum()
    grads = torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)
    wrapper.update_params(loss)
    # (lr, wd) per parameter: linear.weight, linear.bias, ln.weight, ln.bias
    for param, start, grad, (lr, wd) in zip(
        model.parameters(), reference, grads, [(0.1, 0.5), (0.2, 0.5), (0.1, 0.0), (0.1, 0.0)]
    ):
        torch.testing.assert_close(param.detach(), start - lr * (grad + wd * start))
