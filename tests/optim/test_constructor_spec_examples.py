"""The optimizer-constructor examples of the reference tutorial (spec 001), run as written
there apart from the imports, compared with the output the tutorial shows."""

from __future__ import annotations

import logging
from collections import OrderedDict

import pytest
import torch.nn as nn

import minirunner.optim.wrappers  # noqa: F401  (registers the wrappers)
from minirunner.logging import print_log
from minirunner.optim.constructors import DefaultOptimWrapperConstructor, build_optim_wrapper
from minirunner.registry import OPTIM_WRAPPER_CONSTRUCTORS


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.ModuleDict(
            dict(layer0=nn.Linear(1, 1), layer1=nn.Linear(1, 1)))
        self.head = nn.Sequential(
            OrderedDict(
                linear=nn.Linear(1, 1),
                bn=nn.BatchNorm1d(1)))


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


def lr_and_decay(wrapper):
    return [(g["lr"], g["weight_decay"]) for g in wrapper.optimizer.param_groups]


def test_norm_decay_mult_example(log_lines):
    optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.01, weight_decay=0.0001),
        paramwise_cfg=dict(norm_decay_mult=0))
    optimizer = build_optim_wrapper(ToyModel(), optim_wrapper)

    # The tutorial also shows lr/weight_decay lines for the Linear biases, printed by an
    # older version although no option applied to them; only the norm lines are real.
    assert log_lines == [
        "paramwise_options -- head.bn.weight:weight_decay=0.0",
        "paramwise_options -- head.bn.bias:weight_decay=0.0",
    ]
    assert lr_and_decay(optimizer) == [(0.01, 0.0001)] * 6 + [(0.01, 0.0)] * 2


def test_custom_keys_example(log_lines):
    optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.01, weight_decay=0.0001),
        paramwise_cfg=dict(
            custom_keys={
                'backbone.layer0': dict(lr_mult=0, decay_mult=0),
                'backbone': dict(lr_mult=1),
                'head': dict(lr_mult=0.1)
            }))
    optimizer = build_optim_wrapper(ToyModel(), optim_wrapper)

    expected = []
    for name in ("backbone.layer0.weight", "backbone.layer0.bias"):
        expected += [f"{name}:lr=0.0", f"{name}:weight_decay=0.0", f"{name}:lr_mult=0",
                     f"{name}:decay_mult=0"]
    for name in ("backbone.layer1.weight", "backbone.layer1.bias"):
        expected += [f"{name}:lr=0.01", f"{name}:weight_decay=0.0001", f"{name}:lr_mult=1"]
    for name in ("head.linear.weight", "head.linear.bias", "head.bn.weight", "head.bn.bias"):
        expected += [f"{name}:lr=0.001", f"{name}:weight_decay=0.0001", f"{name}:lr_mult=0.1"]
    assert log_lines == [f"paramwise_options -- {line}" for line in expected]
    assert lr_and_decay(optimizer) == (
        [(0.0, 0.0)] * 2 + [(0.01, 0.0001)] * 2 + [(0.001, 0.0001)] * 4
    )


def test_parameter_names_example(capsys):
    for name, val in ToyModel().named_parameters():
        print(name)
    assert capsys.readouterr().out.split() == [
        "backbone.layer0.weight", "backbone.layer0.bias", "backbone.layer1.weight",
        "backbone.layer1.bias", "head.linear.weight", "head.linear.bias", "head.bn.weight",
        "head.bn.bias",
    ]


def test_layer_decay_constructor_example(log_lines):
    # The tutorial's code, unchanged (its typos included).
    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
    class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):

        def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
            super().__init__(optim_wrapper_cfg, paramwise_cfg=None)
            self.decay_factor = paramwise_cfg.get('decay_factor', 0.5)

            super().__init__(optim_wrapper_cfg, paramwise_cfg)

        def add_params(self, params, module, prefix='' ,lr=None):
            if lr is None:
                lr = self.base_lr

            for name, param in module.named_parameters(recurse=False):
                param_group = dict()
                param_group['params'] = [param]
                param_group['lr'] = lr
                params.append(param_group)
                full_name = f'{prefix}.{name}' if prefix else name
                print_log(f'{full_name} : lr={lr}', logger='current')

            for name, module in module.named_children():
                chiled_prefix = f'{prefix}.{name}' if prefix else name
                self.add_params(
                    params, module, chiled_prefix, lr=lr * self.decay_factor)

    class ToyModel(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.ModuleDict(dict(linear=nn.Linear(1, 1)))
            self.linear = nn.Linear(1, 1)

    model = ToyModel()

    optim_wrapper = dict(
        optimizer=dict(type='SGD', lr=0.01, weight_decay=0.0001),
        paramwise_cfg=dict(decay_factor=0.5),
        constructor='LayerDecayOptimWrapperConstructor')

    optimizer = build_optim_wrapper(model, optim_wrapper)

    assert log_lines == [
        "layer.linear.weight : lr=0.0025",
        "layer.linear.bias : lr=0.0025",
        "linear.weight : lr=0.005",
        "linear.bias : lr=0.005",
    ]
    assert [g["lr"] for g in optimizer.optimizer.param_groups] == [0.0025, 0.0025, 0.005, 0.005]
    # The constructor was built through the registry with the cfg's paramwise_cfg.
    assert optimizer.optimizer.param_groups[0]["weight_decay"] == 0.0001


def test_api_reference_example_2_custom_keys_lr_and_decay():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(2, 2)
            self.cls_head = nn.Linear(2, 1)

    optim_wrapper_cfg = dict(type='OptimWrapper', optimizer=dict(
        type='SGD', lr=0.01, weight_decay=0.95))
    paramwise_cfg = dict(custom_keys={
        'backbone': dict(lr_mult=0.1, decay_mult=0.9)})
    optim_wrapper_builder = DefaultOptimWrapperConstructor(
        optim_wrapper_cfg, paramwise_cfg)
    optim_wrapper = optim_wrapper_builder(Model())
    # backbone: (0.01 * 0.1, 0.95 * 0.9); cls_head: (0.01, 0.95)
    flat = [value for pair in lr_and_decay(optim_wrapper) for value in pair]
    assert flat == pytest.approx([0.001, 0.855] * 2 + [0.01, 0.95] * 2)


def test_api_reference_example_1_conv1d_norm_decay_mult():
    model = nn.Conv1d(1, 1, 1)
    optim_wrapper_cfg = dict(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01,
             momentum=0.9, weight_decay=0.0001)))
    paramwise_cfg = dict(norm_decay_mult=0.)
    optim_wrapper_builder = DefaultOptimWrapperConstructor(
        optim_wrapper_cfg, paramwise_cfg)
    optim_wrapper = optim_wrapper_builder(model)
    # No norm layer: both parameters keep the optimizer's settings.
    assert lr_and_decay(optim_wrapper) == [(0.01, 0.0001)] * 2
