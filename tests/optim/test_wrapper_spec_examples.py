"""The optimizer-wrapper examples of spec 001, with ``mmengine`` replaced by ``minirunner``.

Each test runs an example as written and checks the values it prints (values, not
formatting). Newer torch adds keys to param groups (``differentiable``, ``fused``), so param
groups are compared on the spec's keys. CUDA examples are skipped without CUDA.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim import SGD

from minirunner.optim.wrappers import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from minirunner.registry import OPTIM_WRAPPERS, OPTIMIZERS

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

SPEC_SGD_GROUP = {"lr": 0.01, "momentum": 0, "dampening": 0, "weight_decay": 0,
                  "nesterov": False, "maximize": False, "foreach": None, "params": [0, 1]}
SPEC_LOSS_SCALER = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                    "growth_interval": 2000, "_growth_tracker": 0}


def _cpu_grad_scaler_supported() -> bool:
    try:
        torch.amp.GradScaler("cpu")
    except Exception:
        return False
    return True


def _assert_spec_optimizer_state(state: dict) -> None:
    assert state["state"] == {}
    assert len(state["param_groups"]) == 1
    group = state["param_groups"][0]
    assert {key: group[key] for key in SPEC_SGD_GROUP} == SPEC_SGD_GROUP


def _spec_data(shape):
    # Seeded so the bias starts well below the target 1 (0.536 with seed 0): then every
    # l1 step moves it by exactly +lr, which the tests check.
    torch.manual_seed(0)
    return [torch.zeros(*shape)] * 10, [torch.ones(*shape)] * 10


def test_example_1_single_precision_with_sgd_then_optim_wrapper():
    # 1.1 plain PyTorch
    inputs, targets = _spec_data((10, 1, 1))
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)
    optimizer.zero_grad()
    before = copy.deepcopy(model)
    for input, target in zip(inputs, targets):
        output = model(input)
        loss = F.l1_loss(output, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    # Inputs are zero, so only the bias learns: +lr per step while output < target.
    assert torch.equal(model.weight, before.weight)
    torch.testing.assert_close(model.bias, before.bias + 10 * 0.01)

    # 1.2 the same loop with OptimWrapper continues the same model and optimizer.
    reference = copy.deepcopy(model)
    reference_optimizer = SGD(reference.parameters(), lr=0.01)
    optim_wrapper = OptimWrapper(optimizer=optimizer)
    for input, target in zip(inputs, targets):
        output = model(input)
        loss = F.l1_loss(output, target)
        optim_wrapper.update_params(loss)

        F.l1_loss(reference(input), target).backward()
        reference_optimizer.step()
        reference_optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)


def _cuda_examples_setup():
    inputs, targets = _spec_data((10, 1, 1))
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)
    model = model.cuda()
    inputs, targets = _spec_data((10, 1, 1, 1))
    return model, optimizer, inputs, targets


@pytest.mark.cuda
@needs_cuda
def test_example_2_mixed_precision_on_cuda():
    model, optimizer, inputs, targets = _cuda_examples_setup()
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer)
    bias = model.bias.detach().clone()
    for input, target in zip(inputs, targets):
        with optim_wrapper.optim_context(model):
            output = model(input.cuda())
        assert output.dtype == torch.float16
        loss = F.l1_loss(output, target.cuda())
        optim_wrapper.update_params(loss)
    torch.testing.assert_close(model.bias, bias + 10 * 0.01)


@pytest.mark.cuda
@needs_cuda
def test_example_3_mixed_precision_with_accumulation_on_cuda():
    model, optimizer, inputs, targets = _cuda_examples_setup()
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer, accumulative_counts=2)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(optim_wrapper.inner_count))
    for input, target in zip(inputs, targets):
        with optim_wrapper.optim_context(model):
            output = model(input.cuda())
        loss = F.l1_loss(output, target.cuda())
        optim_wrapper.update_params(loss)
    assert steps == [2, 4, 6, 8, 10]


@pytest.mark.cuda
@needs_cuda
def test_example_backward_step_zero_grad_by_hand_on_cuda():
    model, optimizer, inputs, targets = _cuda_examples_setup()
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer, accumulative_counts=2)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(optim_wrapper.inner_count))
    for idx, (input, target) in enumerate(zip(inputs, targets)):
        optimizer.zero_grad()
        with optim_wrapper.optim_context(model):
            output = model(input.cuda())
        loss = F.l1_loss(output, target.cuda())
        optim_wrapper.backward(loss)
        if idx % 2 == 0:
            optim_wrapper.step()
            optim_wrapper.zero_grad()
    assert steps == [1, 3, 5, 7, 9]


def test_examples_2_and_3_adapted_to_cpu():
    """Not in the spec as such: examples 2.2 and 3.2 without .cuda(), with bfloat16."""
    inputs, targets = _spec_data((10, 1, 1, 1))
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)
    bias = model.bias.detach().clone()
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer, accumulative_counts=2)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(optim_wrapper.inner_count))
    for input, target in zip(inputs, targets):
        with optim_wrapper.optim_context(model):
            output = model(input)
        assert output.dtype == torch.bfloat16
        loss = F.l1_loss(output, target)
        optim_wrapper.update_params(loss)
    assert steps == [2, 4, 6, 8, 10]
    # Each step applies the mean of two identical l1 gradients (-1 for the bias): +lr.
    # The bias itself stays float32; bfloat16 only rounds the forward output.
    torch.testing.assert_close(model.bias, bias + 5 * 0.01)


def test_example_clip_grad_configs():
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)
    # based on torch.nn.utils.clip_grad_norm_
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer, clip_grad=dict(max_norm=1))
    assert optim_wrapper.clipper.kind == "norm"
    assert optim_wrapper.clipper.kwargs == dict(max_norm=1)
    # based on torch.nn.utils.clip_grad_value_
    optim_wrapper = AmpOptimWrapper(optimizer=optimizer, clip_grad=dict(clip_value=0.2))
    assert optim_wrapper.clipper.kind == "value"
    assert optim_wrapper.clipper.kwargs == dict(clip_value=0.2)


def test_example_get_lr_and_get_momentum():
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)
    optim_wrapper = OptimWrapper(optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.01
    assert optimizer.param_groups[0]["momentum"] == 0
    assert optim_wrapper.get_lr() == {"lr": [0.01]}
    assert optim_wrapper.get_momentum() == {"momentum": [0]}


def _state_dict_example(**amp_kwargs):
    model = nn.Linear(1, 1)
    optimizer = SGD(model.parameters(), lr=0.01)

    optim_wrapper = OptimWrapper(optimizer=optimizer)
    amp_optim_wrapper = AmpOptimWrapper(optimizer=optimizer, **amp_kwargs)

    optim_state_dict = optim_wrapper.state_dict()
    amp_optim_state_dict = amp_optim_wrapper.state_dict()

    optim_wrapper_new = OptimWrapper(optimizer=optimizer)
    amp_optim_wrapper_new = AmpOptimWrapper(optimizer=optimizer, **amp_kwargs)

    amp_optim_wrapper_new.load_state_dict(amp_optim_state_dict)
    optim_wrapper_new.load_state_dict(optim_state_dict)
    return optim_state_dict, amp_optim_state_dict, amp_optim_wrapper_new


def test_example_state_dicts_on_cpu_as_written():
    """On CPU the default dtype is bfloat16, which has no scaler, so no 'loss_scaler'."""
    optim_state, amp_state, _ = _state_dict_example()
    _assert_spec_optimizer_state(optim_state)
    _assert_spec_optimizer_state(amp_state)
    assert "loss_scaler" not in amp_state


@pytest.mark.skipif(not _cpu_grad_scaler_supported(), reason="this torch has no CPU GradScaler")
def test_example_state_dicts_on_cpu_with_float16():
    optim_state, amp_state, amp_new = _state_dict_example(dtype="float16")
    _assert_spec_optimizer_state(optim_state)
    _assert_spec_optimizer_state(amp_state)
    assert amp_state["loss_scaler"] == SPEC_LOSS_SCALER
    assert amp_new.state_dict()["loss_scaler"] == SPEC_LOSS_SCALER


@pytest.mark.cuda
@needs_cuda
def test_example_state_dicts_on_cuda_as_written():
    model = nn.Linear(1, 1).cuda()
    optimizer = SGD(model.parameters(), lr=0.01)
    amp_state = AmpOptimWrapper(optimizer=optimizer).state_dict()
    _assert_spec_optimizer_state(amp_state)
    assert amp_state["loss_scaler"] == SPEC_LOSS_SCALER


def test_example_optim_wrapper_dict():
    gen = nn.Linear(1, 1)
    disc = nn.Linear(1, 1)
    optimizer_gen = SGD(gen.parameters(), lr=0.01)
    optimizer_disc = SGD(disc.parameters(), lr=0.01)

    optim_wapper_gen = OptimWrapper(optimizer=optimizer_gen)
    optim_wapper_disc = OptimWrapper(optimizer=optimizer_disc)
    optim_dict = OptimWrapperDict(gen=optim_wapper_gen, disc=optim_wapper_disc)

    assert optim_dict.get_lr() == {"gen.lr": [0.01], "disc.lr": [0.01]}
    assert optim_dict.get_momentum() == {"gen.momentum": [0], "disc.momentum": [0]}


def test_example_configs_build_through_the_registry():
    """The config examples, with the optimizer built first (the constructor's job)."""
    params = nn.Linear(1, 1).parameters()
    optimizer = OPTIMIZERS.build(
        dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001),
        default_args=dict(params=params))
    wrapper = OPTIM_WRAPPERS.build(dict(type="OptimWrapper", optimizer=optimizer))
    assert type(wrapper) is OptimWrapper
    assert wrapper.get_lr() == {"lr": [0.01]} and wrapper.get_momentum() == {"momentum": [0.9]}
    amp = OPTIM_WRAPPERS.build(
        dict(type="AmpOptimWrapper", optimizer=optimizer, accumulative_counts=2))
    assert type(amp) is AmpOptimWrapper and amp.accumulative_counts == 2
    # clip_grad from spec 003
    clipped = OPTIM_WRAPPERS.build(dict(type="OptimWrapper", optimizer=optimizer,
                                        clip_grad=dict(max_norm=35, norm_type=2)))
    assert clipped.clipper.kind == "norm"
    assert clipped.clipper.kwargs == dict(max_norm=35, norm_type=2)
