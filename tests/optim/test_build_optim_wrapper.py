"""build_optim_wrapper: constructor selection, wrapper arguments, model unwrapping, and
the errors and warnings for bad ``optim_wrapper`` configs."""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import minirunner.optim.wrappers  # noqa: F401  (registers the wrappers)
from minirunner.optim.constructors import DefaultOptimWrapperConstructor, build_optim_wrapper
from minirunner.optim.wrappers import AmpOptimWrapper, OptimWrapper
from minirunner.registry import MODEL_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS, config_key
from minirunner.utils import ConfigError


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.bn = nn.BatchNorm1d(2)
        self.head = nn.Linear(2, 1)

    def forward(self, x):
        return self.head(self.bn(self.backbone(x)))


@pytest.fixture
def log_lines():
    lines: list[tuple[int, str]] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append((record.levelno, record.getMessage()))

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def build_error(cfg, model=None) -> str:
    """The message of the ConfigError that building ``cfg`` as ``optim_wrapper`` raises."""
    with pytest.raises(ConfigError) as error:
        with config_key("optim_wrapper"):
            build_optim_wrapper(model if model is not None else Net(), cfg)
    return str(error.value)


SGD = dict(type="SGD", lr=0.1, weight_decay=0.01)


# ---------------------------------------------------------------------- normal use
def test_defaults_to_optim_wrapper_over_all_parameters():
    model = Net()
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="SGD", lr=0.1)))
    assert type(wrapper) is OptimWrapper
    assert isinstance(wrapper.optimizer, torch.optim.SGD)
    (group,) = wrapper.optimizer.param_groups
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]


def test_other_keys_go_to_the_wrapper():
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 1.0)
    wrapper = build_optim_wrapper(model, dict(
        optimizer=dict(type="SGD", lr=1.0), accumulative_counts=2,
        clip_grad=dict(max_norm=1e-3),
    ))
    x = torch.full((1, 1), 100.0)
    wrapper.update_params(model(x).sum())
    assert model.weight.item() == 1.0  # first of two accumulated iterations: no step
    wrapper.update_params(model(x).sum())
    # Gradient 2 * 100 / 2 (two halves of the window) clipped to norm 1e-3, lr 1.
    assert model.weight.item() == pytest.approx(1.0 - 1e-3, abs=1e-7)


def test_amp_wrapper_type_and_dtype_reach_the_wrapper():
    wrapper = build_optim_wrapper(Net(), dict(
        type="AmpOptimWrapper", dtype="bfloat16", optimizer=SGD,
        paramwise_cfg=dict(norm_decay_mult=0.0), constructor="DefaultOptimWrapperConstructor",
    ))
    assert type(wrapper) is AmpOptimWrapper
    assert wrapper.cast_dtype == torch.bfloat16
    weight_decays = [g["weight_decay"] for g in wrapper.optimizer.param_groups]
    assert weight_decays == [0.01, 0.01, 0.0, 0.0, 0.01, 0.01]


def test_callers_cfg_is_not_changed():
    cfg = dict(
        optimizer=dict(type="SGD", lr=0.1, weight_decay=0.01),
        paramwise_cfg=dict(norm_decay_mult=0.0, custom_keys={"head": dict(lr_mult=0.5)}),
        constructor=dict(type="DefaultOptimWrapperConstructor"),
        clip_grad=dict(max_norm=1.0),
    )
    snapshot = copy.deepcopy(cfg)
    build_optim_wrapper(Net(), cfg)
    build_optim_wrapper(Net(), cfg)  # and it can be used twice
    assert cfg == snapshot


@pytest.mark.parametrize("constructor", [
    "DefaultOptimWrapperConstructor",
    dict(type="DefaultOptimWrapperConstructor"),
    DefaultOptimWrapperConstructor,
])
def test_constructor_as_name_dict_or_class(constructor):
    wrapper = build_optim_wrapper(Net(), dict(
        optimizer=SGD, constructor=constructor, paramwise_cfg=dict(bias_lr_mult=2.0)))
    assert [g["lr"] for g in wrapper.optimizer.param_groups] == [0.1, 0.2, 0.1, 0.1, 0.1, 0.2]


def test_custom_constructor_gets_paramwise_cfg_and_extra_arguments():
    calls = []

    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
    class RecordingConstructorForTest:
        def __init__(self, optim_wrapper_cfg, paramwise_cfg=None, tag=None):
            calls.append((optim_wrapper_cfg, paramwise_cfg, tag))

        def __call__(self, model):
            return "built"

    result = build_optim_wrapper(Net(), dict(
        optimizer=SGD, clip_grad=None, paramwise_cfg=dict(anything=1),
        constructor=dict(type="RecordingConstructorForTest", tag="x"),
    ))
    assert result == "built"
    assert calls == [(dict(optimizer=SGD, clip_grad=None), dict(anything=1), "x")]


def test_registered_model_wrapper_is_unwrapped(log_lines):
    @MODEL_WRAPPERS.register_module(force=True)
    class WrapperForConstructorTest(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    model = Net()
    wrapper = build_optim_wrapper(WrapperForConstructorTest(model), dict(
        optimizer=SGD, paramwise_cfg=dict(norm_decay_mult=0.0)))
    assert len(wrapper.optimizer.param_groups) == 6
    # Names are the inner model's ("bn.weight", not "module.bn.weight").
    assert (logging.INFO, "paramwise_options -- bn.weight:weight_decay=0.0") in log_lines


def test_a_model_with_an_attribute_called_module_is_not_unwrapped():
    class Owner(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Linear(1, 1)
            self.other = nn.Linear(1, 1)

    model = Owner()
    wrapper = build_optim_wrapper(model, dict(optimizer=SGD))
    assert len(wrapper.optimizer.param_groups[0]["params"]) == 4


@pytest.mark.multiprocess
@pytest.mark.slow
def test_distributed_data_parallel_is_unwrapped(tmp_path):
    script = textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from torch import nn
        import minirunner.optim.wrappers
        from minirunner.optim.constructors import build_optim_wrapper
        dist.init_process_group('gloo', init_method='file://{tmp_path}/store', rank=0, world_size=1)
        inner = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
        ddp = nn.parallel.DistributedDataParallel(inner)
        wrapper = build_optim_wrapper(ddp, dict(
            optimizer=dict(type='SGD', lr=0.1, weight_decay=0.01),
            paramwise_cfg=dict(custom_keys={{'1.': dict(decay_mult=0.0)}})))
        # Inner names are '1.weight'; through DDP they would be 'module.1.weight'.
        print([g['weight_decay'] for g in wrapper.optimizer.param_groups])
        dist.destroy_process_group()
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[0.01, 0.01, 0.0, 0.0]"


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "key",
    ["decay_mult", "bias_decay_mult", "norm_decay_mult", "flat_decay_mult", "dwconv_decay_mult"],
)
def test_decay_mult_without_weight_decay(key):
    message = build_error(dict(optimizer=dict(type="SGD", lr=0.1), paramwise_cfg={key: 0.0}))
    assert message.startswith(f"optim_wrapper.paramwise_cfg.{key}: ")
    assert "sets none" in message and "Add weight_decay=<value> to optimizer" in message


def test_decay_mult_without_weight_decay_names_the_optimizers_default():
    message = build_error(dict(optimizer=dict(type="AdamW", lr=1e-3),
                               paramwise_cfg=dict(norm_decay_mult=0.0)))
    assert "AdamW would use its default weight_decay=0.01" in message


def test_custom_keys_decay_mult_without_weight_decay():
    message = build_error(dict(
        optimizer=dict(type="SGD", lr=0.1),
        paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=0.1, decay_mult=0.0)}),
    ))
    assert message.startswith("optim_wrapper.paramwise_cfg.custom_keys['head'].decay_mult: ")
    assert "Add weight_decay=<value> to optimizer" in message


def test_unknown_paramwise_key_suggests_the_right_one():
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(norm_decay_mul=0.0)))
    assert message.startswith("optim_wrapper.paramwise_cfg.norm_decay_mul: unknown option")
    assert "Did you mean 'norm_decay_mult'" in message


def test_subclass_with_declared_keys_accepts_them_and_still_rejects_typos():
    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
    class ExtraKeyConstructorForTest(DefaultOptimWrapperConstructor):
        extra_paramwise_keys = ("warmup_mult",)

    cfg = dict(optimizer=SGD, constructor="ExtraKeyConstructorForTest")
    build_optim_wrapper(Net(), dict(cfg, paramwise_cfg=dict(warmup_mult=2.0, bias_lr_mult=2.0)))
    message = build_error(dict(cfg, paramwise_cfg=dict(warmup_mul=2.0)))
    assert message.startswith("optim_wrapper.paramwise_cfg.warmup_mul: ")
    assert "Did you mean 'warmup_mult'?" in message


def test_subclass_overriding_add_params_is_not_key_checked():
    class OwnRules(DefaultOptimWrapperConstructor):
        def add_params(self, params, module, prefix="", is_dcn_module=None):
            scale = self.paramwise_cfg["scale"]
            params.extend({"params": [p], "lr": self.base_lr * scale} for p in module.parameters())

    wrapper = OwnRules(dict(optimizer=SGD), dict(scale=0.5))(Net())
    assert {g["lr"] for g in wrapper.optimizer.param_groups} == {0.05}


def test_custom_keys_must_be_a_dict_of_dicts():
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(custom_keys=["head"])))
    assert message.startswith("optim_wrapper.paramwise_cfg.custom_keys: must be a dict")
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(custom_keys={"head": 0.1})))
    assert message.startswith("optim_wrapper.paramwise_cfg.custom_keys['head']: must be a dict")
    assert "{'head': dict(lr_mult=0.1)}" in message


def test_custom_keys_near_miss_of_a_multiplier():
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(
        custom_keys={"head": dict(decay_mul=0.0)})))
    assert message.startswith("optim_wrapper.paramwise_cfg.custom_keys['head'].decay_mul: ")
    assert "Did you mean 'decay_mult'?" in message
    # Optimizer options are fine: they are copied into the group.
    wrapper = build_optim_wrapper(Net(), dict(optimizer=dict(SGD, momentum=0.9), paramwise_cfg=dict(
        custom_keys={"head": dict(momentum=0.5, dampening=0.1)})))
    assert wrapper.optimizer.param_groups[-1]["momentum"] == 0.5


def test_multiplier_must_be_a_number():
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(bias_lr_mult="2")))
    assert message.startswith("optim_wrapper.paramwise_cfg.bias_lr_mult: must be a number")
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(bypass_duplicate="yes")))
    assert message.startswith("optim_wrapper.paramwise_cfg.bypass_duplicate: must be True or False")


def test_shared_parameter_error_names_it_and_the_fix():
    model = Net()
    model.tied = nn.Linear(2, 2)
    model.tied.weight = model.backbone.weight
    message = build_error(dict(optimizer=SGD, paramwise_cfg=dict(norm_decay_mult=0.0)), model)
    assert message.startswith("optim_wrapper.paramwise_cfg: parameter 'tied.weight'")
    assert "'backbone.weight'" in message and "bypass_duplicate=True" in message


def test_custom_key_matching_nothing_is_a_warning(log_lines):
    build_optim_wrapper(Net(), dict(optimizer=SGD, paramwise_cfg=dict(
        custom_keys={"backbon": dict(lr_mult=0.1), "neck": dict(lr_mult=0.1)})))
    warnings = [msg for level, msg in log_lines if level == logging.WARNING]
    assert len(warnings) == 1  # 'backbon' is a substring of 'backbone.weight': it matches
    assert warnings[0].startswith("optim_wrapper.paramwise_cfg.custom_keys: 'neck' matches no")
    assert "fix or remove the key" in warnings[0]


def test_custom_key_warning_suggests_a_close_name(log_lines):
    build_optim_wrapper(Net(), dict(optimizer=SGD, paramwise_cfg=dict(
        custom_keys={"backbome": dict(lr_mult=0.1)})))
    (warning,) = [msg for level, msg in log_lines if level == logging.WARNING]
    assert "'backbome' matches no parameter name" in warning
    assert "Did you mean 'backbone'" in warning


def test_paramwise_cfg_inside_optimizer():
    message = build_error(dict(optimizer=dict(SGD, paramwise_cfg=dict(norm_decay_mult=0.0))))
    assert message.startswith("optim_wrapper.optimizer.paramwise_cfg: ")
    assert "move it up one level" in message


def test_missing_optimizer_and_bad_optimizer_type():
    message = build_error(dict(lr=0.1))
    assert message.startswith("optim_wrapper.optimizer: the config has no 'optimizer'")
    message = build_error(dict(optimizer=dict(type="SDG", lr=0.1)))
    assert message.startswith("optim_wrapper.optimizer.type: 'SDG' is not registered")
    assert "Did you mean 'SGD'" in message


def test_unknown_constructor_suggests_the_right_one():
    message = build_error(dict(optimizer=SGD, constructor="DefaultOptimWraperConstructor"))
    assert message.startswith("optim_wrapper.constructor: 'DefaultOptimWraperConstructor' is not")
    assert "Did you mean 'DefaultOptimWrapperConstructor'" in message


def test_unknown_wrapper_argument():
    message = build_error(dict(optimizer=SGD, clip_grads=dict(max_norm=1)))
    assert message.startswith("optim_wrapper.clip_grads: ")
    assert "'clip_grad'" in message


def test_optimizer_without_lr_uses_its_default_for_multipliers():
    wrapper = build_optim_wrapper(Net(), dict(
        optimizer=dict(type="SGD"), paramwise_cfg=dict(custom_keys={"head": dict(lr_mult=2.0)})))
    assert [g["lr"] for g in wrapper.optimizer.param_groups][-2:] == [0.002, 0.002]
