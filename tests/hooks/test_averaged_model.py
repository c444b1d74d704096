"""Averaged models (EMA, momentum-annealing EMA, SWA) against the reference's documented
formulas, and EMAHook building them (or a user's subclass) from MODELS."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minirunner.hooks.ema_hook import EMAHook
from minirunner.model.averaged_model import (
    BaseAveragedModel,
    ExponentialMovingAverage,
    MomentumAnnealingEMA,
    StochasticWeightAverage,
)
from minirunner.registry import MODELS
from minirunner.utils import ConfigError


def run_updates(averaged: BaseAveragedModel, model: nn.Linear, values: list[float]) -> None:
    for value in values:
        with torch.no_grad():
            model.weight.fill_(value)
            model.bias.fill_(-value)
        averaged.update_parameters(model)


def reference_average(values: list[float], weight_of_update) -> float:
    """First update copies; update n (n >= 1) does avg = (1 - w_n) * avg + w_n * value."""
    avg = values[0]
    for n, value in enumerate(values[1:], start=1):
        w = weight_of_update(n)
        if w is not None:
            avg = (1 - w) * avg + w * value
    return avg


VALUES = [1.0, 5.0, -2.0, 7.0, 3.0, 0.5]


def test_ema_momentum_is_the_weight_of_the_new_value():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, momentum=0.25)
    run_updates(ema, model, VALUES)
    expected = reference_average(VALUES, lambda n: 0.25)
    assert ema.module.weight.flatten().tolist() == pytest.approx([expected] * 4)
    assert ema.module.bias.tolist() == pytest.approx([-expected] * 2)
    assert int(ema.steps) == len(VALUES)
    assert ema.steps.dtype == torch.long


def test_ema_default_momentum_and_copy_of_the_model():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model)
    assert ema.momentum == 0.0002 and ema.interval == 1 and ema.update_buffers is False
    assert ema.module is not model and ema.module.weight is not model.weight  # a deep copy
    assert torch.equal(ema.module.weight, model.weight)
    x = torch.randn(3, 2)
    assert torch.equal(ema(x), model(x))  # forward runs the averaged copy


def test_interval_averages_only_every_interval_updates():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, momentum=0.5, interval=2)
    run_updates(ema, model, VALUES)
    expected = reference_average(VALUES, lambda n: 0.5 if n % 2 == 0 else None)
    assert ema.module.weight.flatten().tolist() == pytest.approx([expected] * 4)


def test_momentum_annealing_weight():
    model = nn.Linear(2, 2)
    ema = MomentumAnnealingEMA(model, momentum=0.1, gamma=2)
    assert ema.gamma == 2
    run_updates(ema, model, VALUES)
    expected = reference_average(VALUES, lambda n: max(0.1, 2 / (2 + n)))
    assert ema.module.weight.flatten().tolist() == pytest.approx([expected] * 4)


def test_stochastic_weight_average_is_the_mean():
    model = nn.Linear(2, 2)
    swa = StochasticWeightAverage(model)
    run_updates(swa, model, VALUES)
    assert swa.module.weight.flatten().tolist() == pytest.approx([sum(VALUES) / len(VALUES)] * 4)
    # With an interval, the mean of the values seen at averaging updates (and the first).
    swa = StochasticWeightAverage(model, interval=2)
    run_updates(swa, model, VALUES)
    seen = [VALUES[0], VALUES[2], VALUES[4]]
    assert swa.module.weight.flatten().tolist() == pytest.approx([sum(seen) / 3] * 4)


def test_buffers_are_copied_unless_update_buffers():
    model = nn.BatchNorm1d(2)
    for update_buffers, expected in ((False, 8.0), (True, reference_average([2.0, 4.0, 8.0], lambda n: 0.5))):
        ema = ExponentialMovingAverage(model, momentum=0.5, update_buffers=update_buffers)
        for value in (2.0, 4.0, 8.0):
            with torch.no_grad():
                model.running_mean.fill_(value)
            ema.update_parameters(model)
        assert ema.module.running_mean.tolist() == pytest.approx([expected] * 2)
    assert set(ema.avg_parameters) == set(model.state_dict())  # update_buffers=True
    assert set(ExponentialMovingAverage(model).avg_parameters) == {"weight", "bias"}


def test_state_dict_layout_and_load_restores_steps():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, momentum=0.5)
    run_updates(ema, model, VALUES[:3])
    state = ema.state_dict()
    assert set(state) == {"steps", "module.weight", "module.bias"}
    other = ExponentialMovingAverage(nn.Linear(2, 2), momentum=0.5)
    other.load_state_dict(state)
    assert int(other.steps) == 3
    run_updates(other, model, VALUES[3:])
    run_updates(ema, model, VALUES[3:])
    assert torch.equal(other.module.weight, ema.module.weight)  # continues, not restarted


def test_moving_the_average_reindexes_its_tensors():
    model = nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, momentum=0.5, device="cpu")
    run_updates(ema, model, [1.0])
    ema.to(torch.float64)
    run_updates(ema, model, [3.0])
    assert ema.module.weight.dtype == torch.float64
    assert ema.module.weight.flatten().tolist() == [2.0] * 4


@pytest.mark.parametrize("kwargs", [dict(momentum=0), dict(momentum=1.0), dict(momentum=-0.5), dict(interval=0)])
def test_bad_arguments_raise_assertion_and_config_errors(kwargs):
    with pytest.raises(AssertionError) as info:
        ExponentialMovingAverage(nn.Linear(1, 1), **kwargs)
    assert isinstance(info.value, ConfigError) and info.value.key == next(iter(kwargs))
    with pytest.raises(AssertionError):
        MomentumAnnealingEMA(nn.Linear(1, 1), gamma=0)


def test_registered_in_models():
    for cls in (ExponentialMovingAverage, MomentumAnnealingEMA, StochasticWeightAverage):
        assert MODELS.get(cls.__name__) is cls
    built = MODELS.build(dict(type="ExponentialMovingAverage", momentum=0.1), default_args=dict(model=nn.Linear(1, 1)))
    assert isinstance(built, ExponentialMovingAverage) and built.momentum == 0.1


class HalfwayAverage(BaseAveragedModel):
    """A user's average: avg = (avg + src) / 2, through avg_func (called per tensor)."""

    calls: list = []

    def avg_func(self, averaged_param, source_param, steps):
        HalfwayAverage.calls.append(int(steps))
        averaged_param.add_(source_param).div_(2)


MODELS.register_module(module=HalfwayAverage, force=True)


class FakeRunner:
    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.iter = 0
        self.epoch = 0
        self.max_iters = 100
        self.max_epochs = 10


def test_ema_hook_builds_a_registered_subclass_and_calls_its_avg_func():
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    hook = EMAHook(ema_type="HalfwayAverage", interval=1)
    assert hook.ema_cfg == dict(type="HalfwayAverage", interval=1)
    hook.before_run(runner)
    hook.before_train(runner)
    assert isinstance(hook.ema_model, HalfwayAverage) and hook.src_model is model
    HalfwayAverage.calls.clear()
    for k, value in enumerate([4.0, 8.0, 0.0]):
        with torch.no_grad():
            model.weight.fill_(value)
            model.bias.fill_(value)
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)
    # copy 4; (4 + 8) / 2 = 6; (6 + 0) / 2 = 3
    assert hook.ema_model.module.weight.flatten().tolist() == [3.0] * 4
    assert HalfwayAverage.calls == [1, 1, 2, 2]  # steps passed, once per averaged tensor


def test_ema_hook_rejects_arguments_of_another_average():
    with pytest.raises(ConfigError) as info:
        EMAHook(ema_type="StochasticWeightAverage", momentum=0.1)
    assert info.value.key == "momentum" and "StochasticWeightAverage" in str(info.value)
    with pytest.raises(ConfigError) as info:
        EMAHook(ema_type=nn.Linear)
    assert info.value.key == "ema_type"


def test_ema_hook_accepts_a_class_and_mmengine_defaults():
    hook = EMAHook(ema_type=MomentumAnnealingEMA, gamma=10)
    assert hook.strict_load is False  # the reference's default since its v0.3.0
    assert hook.begin_iter == 0 and hook.begin_epoch == 0 and hook.enabled_by_epoch is False
    runner = FakeRunner(nn.Linear(2, 2))
    hook.before_run(runner)
    assert isinstance(hook.ema_model, MomentumAnnealingEMA) and hook.ema_model.gamma == 10
