"""Public names of the reference engine's OptimWrapper and OptimWrapperDict, and the
AssertionError that build_param_schedulers raises for an optim wrapper still in config form.

Written from the reference's documented behaviour: ``OptimWrapper.clip_grad_kwargs`` holds
the clip function's keyword arguments (``clip_grad`` without ``type``) and ``clip_func`` /
``grad_name`` name the function; ``OptimWrapperDict`` exposes ``optim_wrappers``,
``param_groups`` (a dict of each wrapper's groups), zeroes every wrapper in ``zero_grad``,
raises NotImplementedError for ``update_params``/``backward``/``step``/``optim_context``,
raises AssertionError for a missing name, a non-wrapper value or an unknown state name, and
prints each wrapper after a ``name: <name>`` line.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from minirunner.optim import OptimWrapper, OptimWrapperDict, build_param_schedulers
from minirunner.utils import ConfigError


def _wrapper(model=None, **kwargs):
    model = model or nn.Linear(2, 1)
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), **kwargs)


# ------------------------------------------------------------------ OptimWrapper
@pytest.mark.parametrize(
    "clip_grad,kwargs,func,name",
    [
        (dict(max_norm=2.0, norm_type=1), dict(max_norm=2.0, norm_type=1), clip_grad_norm_, "grad_norm"),
        (dict(type="norm", max_norm=2.0), dict(max_norm=2.0), clip_grad_norm_, "grad_norm"),
        (dict(type="value", clip_value=0.3), dict(clip_value=0.3), clip_grad_value_, "grad_value"),
    ],
)
def test_clip_grad_kwargs_are_the_clip_function_arguments(clip_grad, kwargs, func, name):
    given = dict(clip_grad)
    wrapper = _wrapper(clip_grad=given)
    assert wrapper.clip_grad_kwargs == kwargs
    assert wrapper.clip_func is func and wrapper.grad_name == name
    assert given == clip_grad  # the caller's dict is not changed (the reference pops 'type')


def test_clip_grad_kwargs_drive_the_clipping():
    model = nn.Linear(2, 1)
    wrapper = _wrapper(model, clip_grad=dict(max_norm=100.0))
    wrapper.clip_grad_kwargs["max_norm"] = 1e-3  # the reference's dict is the one in use
    model.weight.grad = torch.tensor([[3.0, 4.0]])
    model.bias.grad = torch.tensor([0.0])
    before = model.weight.detach().clone()
    wrapper.step()
    assert float(wrapper.grad_norm) == pytest.approx(5.0)  # the norm before clipping
    # SGD with lr 0.1 moved the weight by 0.1 * the gradient clipped to norm 1e-3.
    moved = (before - model.weight.detach())[0].tolist()
    assert moved == pytest.approx([0.1 * 3e-3 / 5, 0.1 * 4e-3 / 5], rel=1e-4)


def test_no_clipping_means_none():
    wrapper = _wrapper()
    assert wrapper.clip_grad_kwargs is None and wrapper.clip_func is None and wrapper.grad_name is None


def test_param_groups_and_defaults_are_the_optimizers():
    wrapper = _wrapper()
    assert wrapper.param_groups is wrapper.optimizer.param_groups
    assert wrapper.defaults is wrapper.optimizer.defaults
    assert wrapper.get_lr() == {"lr": [0.1]} and wrapper.get_momentum() == {"momentum": [0.9]}


# ------------------------------------------------------------------ OptimWrapperDict
def _gan():
    torch.manual_seed(0)
    gen, disc = nn.Linear(2, 2), nn.Linear(2, 1)
    return gen, disc, OptimWrapperDict(gen=_wrapper(gen), disc=_wrapper(disc))


def test_optim_wrappers_is_the_dict_of_wrappers():
    _, _, wrappers = _gan()
    assert isinstance(wrappers.optim_wrappers, dict)
    assert list(wrappers.optim_wrappers) == ["gen", "disc"]
    assert wrappers.optim_wrappers["gen"] is wrappers["gen"]
    assert list(wrappers.keys()) == ["gen", "disc"]
    assert list(wrappers.values()) == [wrappers["gen"], wrappers["disc"]]


def test_param_groups_is_a_dict_of_each_wrappers_groups():
    _, _, wrappers = _gan()
    groups = wrappers.param_groups
    assert set(groups) == {"gen", "disc"}
    assert groups["gen"] is wrappers["gen"].param_groups
    assert groups["disc"] is wrappers["disc"].param_groups


def test_zero_grad_zeroes_every_wrapper():
    gen, disc, wrappers = _gan()
    for model in (gen, disc):
        model(torch.randn(3, 2)).sum().backward()
    assert all(p.grad is not None for p in [*gen.parameters(), *disc.parameters()])
    wrappers.zero_grad()
    assert all(p.grad is None for p in [*gen.parameters(), *disc.parameters()])


@pytest.mark.parametrize("method", ["update_params", "backward", "step"])
def test_ambiguous_training_methods_raise_not_implemented(method):
    gen, _, wrappers = _gan()
    with pytest.raises(NotImplementedError):
        getattr(wrappers, method)(gen(torch.randn(1, 2)).sum())


def test_optim_context_raises_not_implemented_by_the_time_it_is_entered():
    gen, _, wrappers = _gan()
    with pytest.raises(NotImplementedError):
        with wrappers.optim_context(gen):
            pass


def test_missing_name_is_an_assertion_and_a_key_error():
    _, _, wrappers = _gan()
    with pytest.raises(AssertionError, match="no optimizer wrapper named 'critic'"):
        wrappers["critic"]
    assert "critic" not in wrappers and wrappers.get("critic") is None
    assert len(wrappers) == 2


def test_values_that_are_not_wrappers_are_assertion_errors():
    with pytest.raises(AssertionError, match=r"^disc: expected an OptimWrapper"):
        OptimWrapperDict(disc=torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))


def test_state_for_an_unknown_name_is_an_assertion_error():
    _, _, wrappers = _gan()
    state = wrappers.state_dict()
    state["critic"] = state["disc"]
    with pytest.raises(AssertionError, match="unexpected: 'critic'"):
        wrappers.load_state_dict(state)


def test_get_lr_and_momentum_keys_and_state_dict_by_name():
    _, _, wrappers = _gan()
    assert wrappers.get_lr() == {"gen.lr": [0.1], "disc.lr": [0.1]}
    assert wrappers.get_momentum() == {"gen.momentum": [0.9], "disc.momentum": [0.9]}
    assert set(wrappers.state_dict()) == {"gen", "disc"}


def test_repr_has_a_name_line_before_each_wrapper():
    _, _, wrappers = _gan()
    lines = repr(wrappers).splitlines()
    assert lines[0] == "name: gen"
    assert "name: disc" in lines
    assert repr(wrappers["disc"]).splitlines()[0] == lines[lines.index("name: disc") + 1]


def test_an_empty_dict_is_allowed():
    wrappers = OptimWrapperDict()
    assert len(wrappers) == 0 and wrappers.get_lr() == {} and wrappers.param_groups == {}


# ------------------------------------------------------------------ build_param_schedulers
@pytest.mark.parametrize(
    "cfg",
    [
        dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1)),
        dict(optimizer=dict(type="SGD", lr=0.1)),
        dict(constructor="MultiOptimWrapperConstructor", gen=dict(optimizer=dict(type="SGD", lr=0.1))),
        dict(gen=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1))),
    ],
)
def test_schedulers_for_an_unbuilt_optim_wrapper_raise_an_assertion_error(cfg):
    with pytest.raises(AssertionError) as info:
        build_param_schedulers(dict(type="StepLR", step_size=1), cfg)
    assert isinstance(info.value, ConfigError)
    assert str(info.value).startswith("optim_wrapper: is still a config")
    assert "build_optim_wrapper" in str(info.value)


def test_a_plain_dict_of_built_wrappers_still_works():
    _, _, wrappers = _gan()
    built = build_param_schedulers(dict(type="StepLR", step_size=1), dict(wrappers.items()))
    assert set(built) == {"gen", "disc"}


# ------------------------------------------------------------------ AmpOptimWrapper(use_fsdp)
def test_amp_use_fsdp_picks_the_sharded_grad_scaler():
    from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

    from minirunner.optim import AmpOptimWrapper

    params = nn.Linear(2, 1).parameters
    sharded = AmpOptimWrapper(optimizer=torch.optim.SGD(params(), lr=0.1), dtype="float16",
                              loss_scale=512.0, use_fsdp=True)
    assert isinstance(sharded.loss_scaler, ShardedGradScaler) and sharded.use_fsdp
    assert sharded.loss_scaler.get_scale() == 512.0
    plain = AmpOptimWrapper(optimizer=torch.optim.SGD(params(), lr=0.1), dtype="float16")
    assert not isinstance(plain.loss_scaler, ShardedGradScaler) and plain.use_fsdp is False
    bf16 = AmpOptimWrapper(optimizer=torch.optim.SGD(params(), lr=0.1), dtype="bfloat16", use_fsdp=True)
    assert bf16.loss_scaler is None  # bfloat16 never scales
