"""Factors of 0: LinearLR warming up from zero, ConstantLR at zero, and the factor ranges.

The reference engine accepts ``start_factor``/``end_factor`` (Linear) and ``factor``
(Constant) in [0, 1] and raises ValueError outside. Expected values come from the closed
forms of DESIGN.md, computed here: Linear ``b*(start + (end_factor - start)*min(t, T)/T)``
and Constant ``b*factor`` while ``t < T``, ``b`` after, with ``T = end - begin - 1``.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from minirunner.optim import OptimWrapper
from minirunner.optim.scheduler import (
    ConstantLR,
    ConstantParamScheduler,
    LinearLR,
    LinearMomentum,
    LinearParamScheduler,
)
from minirunner.utils import ConfigError


def _sgd(lrs=(0.1, 0.04)):
    groups = [dict(params=[torch.nn.Parameter(torch.zeros(1))], lr=lr) for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def _linear(b, start, end_factor, t, T):
    return b * (start + (end_factor - start) * min(t, T) / T)


def _run(scheduler, optimizer, steps, key="lr"):
    values = [[g[key] for g in optimizer.param_groups]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepped without an optimizer on purpose
        for _ in range(steps):
            scheduler.step()
            values.append([g[key] for g in optimizer.param_groups])
    return values


@pytest.mark.parametrize("end_factor", [1.0, 0.5])
@pytest.mark.parametrize("begin,end", [(0, 5), (2, 7)])
def test_linear_warm_up_from_zero_follows_the_closed_form(end_factor, begin, end):
    optimizer = _sgd()
    scheduler = LinearLR(optimizer, start_factor=0, end_factor=end_factor, begin=begin, end=end,
                         by_epoch=False)
    values = _run(scheduler, optimizer, end + 3)
    T = end - begin - 1
    for step, row in enumerate(values):
        for b, value in zip((0.1, 0.04), row):
            expected = b if step < begin else _linear(b, 0.0, end_factor, step - begin, T)
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-15), (step, row)
    assert values[begin] == [0.0, 0.0]  # really zero at the first step of the range


def test_zero_start_and_zero_end_stay_zero():
    optimizer = _sgd()
    scheduler = LinearParamScheduler(optimizer, "lr", start_factor=0, end_factor=0, end=4)
    assert _run(scheduler, optimizer, 6)[1:] == [[0.0, 0.0]] * 6


def test_zero_start_chains_with_a_later_scheduler():
    # Warm-up from zero over [0, 4), then halve every step from 4 on: values multiply.
    optimizer = _sgd(lrs=(0.8,))
    warm = LinearLR(optimizer, start_factor=0, end=4, by_epoch=False)
    decay = LinearLR(optimizer, start_factor=0.5, end_factor=0.5, begin=4, end=6, by_epoch=False)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values.append(optimizer.param_groups[0]["lr"])
        for _ in range(6):
            warm.step()
            decay.step()
            values.append(optimizer.param_groups[0]["lr"])
    expected = [_linear(0.8, 0.0, 1.0, t, 3) for t in range(4)] + [0.8 * 0.5] * 3
    assert values == pytest.approx(expected, rel=1e-12)


def test_zero_start_resumes_from_the_state_dict_mid_warm_up():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    scheduler = LinearLR(optimizer, start_factor=0, end=6, by_epoch=False)
    # Save right after step 0, the one that zeroed the value.
    saved = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict()))
    reference = _run(scheduler, optimizer, 6)

    model2 = copy.deepcopy(model)
    optimizer2 = torch.optim.SGD(model2.parameters(), lr=0.3)
    scheduler2 = LinearLR(optimizer2, start_factor=0, end=6, by_epoch=False)
    optimizer2.load_state_dict(saved[0])
    scheduler2.load_state_dict(saved[1])
    assert _run(scheduler2, optimizer2, 6) == reference
    assert [row[0] for row in reference[1:6]] == pytest.approx([0.3 * t / 5 for t in range(1, 6)], rel=1e-12)


def test_zero_start_through_an_optim_wrapper_and_for_momentum():
    optimizer = _sgd()
    wrapper = OptimWrapper(optimizer)  # two groups: the base settings are scheduled too
    scheduler = LinearMomentum(wrapper, start_factor=0, end=3, by_epoch=False)
    values = _run(scheduler, optimizer, 3, key="momentum")
    assert values[1:] == [[0.45, 0.45], [0.9, 0.9], [0.9, 0.9]]
    assert wrapper.base_param_settings["momentum"] == pytest.approx(0.9)


@pytest.mark.parametrize("begin,end", [(0, 4), (1, 3)])
def test_constant_factor_zero_restores_the_value_at_the_end(begin, end):
    optimizer = _sgd()
    scheduler = ConstantLR(optimizer, factor=0, begin=begin, end=end, by_epoch=False)
    values = _run(scheduler, optimizer, end + 2)
    T = end - begin - 1
    for step, row in enumerate(values):
        in_factor = begin <= step and step - begin < T
        assert row == ([0.0, 0.0] if in_factor else [0.1, 0.04]), (step, row)


@pytest.mark.parametrize(
    "cls,kwargs,key",
    [
        (LinearParamScheduler, dict(start_factor=-0.01), "start_factor"),
        (LinearParamScheduler, dict(start_factor=1.01), "start_factor"),
        (LinearParamScheduler, dict(end_factor=-0.01), "end_factor"),
        (LinearParamScheduler, dict(end_factor=1.01), "end_factor"),
        (ConstantParamScheduler, dict(factor=-0.01), "factor"),
        (ConstantParamScheduler, dict(factor=1.01), "factor"),
    ],
)
def test_factors_outside_zero_to_one_are_value_errors_naming_the_key(cls, kwargs, key):
    with pytest.raises(ValueError) as info:  # the reference's class
        cls(_sgd(), "lr", end=5, **kwargs)
    assert isinstance(info.value, ConfigError)
    assert str(info.value).startswith(f"{key}: ") and "[0, 1]" in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(start_factor=0), dict(start_factor=1), dict(end_factor=0)])
def test_the_bounds_themselves_are_accepted(kwargs):
    LinearParamScheduler(_sgd(), "lr", end=5, **kwargs)
    ConstantParamScheduler(_sgd(), "lr", factor=kwargs.get("start_factor", 0), end=5)
