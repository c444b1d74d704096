"""Every `<Name>LR` and `<Name>Momentum` class against the closed forms of DESIGN.md.

Momentum is checked on SGD (``momentum``) and on Adam (``betas[0]``, written back as a tuple).
Expected values come from closed forms written here, step by step.
"""

from __future__ import annotations

import math

import pytest
import torch

import minirunner.optim.scheduler  # noqa: F401
from minirunner.optim.scheduler import (
    ConstantLR,
    ConstantMomentum,
    CosineAnnealingLR,
    CosineAnnealingMomentum,
    CosineRestartLR,
    CosineRestartMomentum,
    ExponentialLR,
    ExponentialMomentum,
    LinearLR,
    LinearMomentum,
    MultiStepLR,
    MultiStepMomentum,
    PolyLR,
    PolyMomentum,
    ReduceOnPlateauLR,
    ReduceOnPlateauMomentum,
    StepLR,
    StepMomentum,
)
from minirunner.utils import ConfigError

REL = 1e-9


def params():
    return [torch.nn.Parameter(torch.ones(3))]


def sgd():
    return torch.optim.SGD(
        [dict(params=params(), lr=0.1, momentum=0.9), dict(params=params(), lr=0.02, momentum=0.5)],
        lr=0.1,
        momentum=0.9,
    )


def adam():
    return torch.optim.Adam(
        [dict(params=params(), lr=1e-3, betas=(0.9, 0.999)), dict(params=params(), betas=(0.8, 0.99))],
        lr=1e-3,
    )


# Closed forms: base value b, local step t, range length n (DESIGN.md, "Param schedulers").
def linear_form(b, t, n, s=0.3, e=0.9):
    return b * (s + (e - s) * min(t, n - 1) / (n - 1))


def poly_form(b, t, n, eta_min=0.05, power=1.5):
    return eta_min + (b - eta_min) * (1 - min(t, n - 1) / (n - 1)) ** power


def cosine_form(b, t, n, eta_min=0.05):
    return eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / n)) / 2


def restart_form(b, t, n, periods=(2, 4), weights=(1.0, 0.6), eta_min=0.05):
    start = 0
    for period, weight in zip(periods, weights):
        if t < start + period:
            return eta_min + (b * weight - eta_min) * (1 + math.cos(math.pi * (t - start) / period)) / 2
        start += period
    return restart_form(b, start - 1, n, periods, weights, eta_min)


FAMILIES = [
    ("Constant", ConstantLR, ConstantMomentum, dict(factor=0.4),
     lambda b, t, n: b * 0.4 if t < n - 1 else b),
    ("Exponential", ExponentialLR, ExponentialMomentum, dict(gamma=0.9), lambda b, t, n: b * 0.9**t),
    ("Linear", LinearLR, LinearMomentum, dict(start_factor=0.3, end_factor=0.9), linear_form),
    ("MultiStep", MultiStepLR, MultiStepMomentum, dict(milestones=[1, 4], gamma=0.5),
     lambda b, t, n: b * 0.5 ** ((t >= 1) + (t >= 4))),
    ("Poly", PolyLR, PolyMomentum, dict(eta_min=0.05, power=1.5), poly_form),
    ("Step", StepLR, StepMomentum, dict(step_size=2, gamma=0.5), lambda b, t, n: b * 0.5 ** (t // 2)),
    ("CosineAnnealing", CosineAnnealingLR, CosineAnnealingMomentum, dict(eta_min=0.05), cosine_form),
    ("CosineRestart", CosineRestartLR, CosineRestartMomentum,
     dict(periods=[2, 4], restart_weights=[1.0, 0.6], eta_min=0.05), restart_form),
]


def expected(form, b, step, begin, end):
    if step < begin:
        return b
    return form(b, min(step, end - 1) - begin, end - begin)


def momentum_of(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


@pytest.mark.parametrize("name,lr_cls,_m,kwargs,form", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_lr_class(name, lr_cls, _m, kwargs, form):
    opt = sgd()
    scheduler = lr_cls(opt, begin=1, end=8, **kwargs)
    assert scheduler.param_name == "lr"
    for step in range(11):
        if step:
            scheduler.step()
        for group, b in zip(opt.param_groups, (0.1, 0.02)):
            assert group["lr"] == pytest.approx(expected(form, b, step, 1, 8), rel=REL), step
        assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]


@pytest.mark.parametrize("make_opt", [sgd, adam], ids=["sgd-momentum", "adam-betas"])
@pytest.mark.parametrize("name,_l,momentum_cls,kwargs,form", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_momentum_class(name, _l, momentum_cls, kwargs, form, make_opt):
    opt = make_opt()
    bases = [momentum_of(g) for g in opt.param_groups]
    lrs = [g["lr"] for g in opt.param_groups]
    betas2 = [g["betas"][1] for g in opt.param_groups] if "betas" in opt.defaults else None
    scheduler = momentum_cls(opt, begin=0, end=7, **kwargs)
    for step in range(10):
        if step:
            scheduler.step()
        for group, b in zip(opt.param_groups, bases):
            assert momentum_of(group) == pytest.approx(expected(form, b, step, 0, 7), rel=REL), step
            if betas2 is not None:
                assert isinstance(group["betas"], tuple)
                assert group["momentum"] == group["betas"][0]
        if betas2 is not None:
            assert [g["betas"][1] for g in opt.param_groups] == betas2
        assert [g["lr"] for g in opt.param_groups] == lrs


def test_adam_trains_with_the_scheduled_beta():
    """Adam reads the new betas[0]: one step matches a hand-written Adam update with it."""
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.Adam([weight], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    LinearMomentum(opt, start_factor=0.5, end=4)  # beta1 = 0.45 at step 0
    grad = torch.tensor([0.3, -0.7])
    weight.grad = grad.clone()
    opt.step()
    beta1, beta2 = 0.45, 0.999
    m = (1 - beta1) * grad
    v = (1 - beta2) * grad**2
    update = 0.1 * (m / (1 - beta1)) / ((v / (1 - beta2)).sqrt() + 1e-8)
    assert torch.allclose(weight.detach(), torch.tensor([1.0, -2.0]) - update, atol=1e-6)


def test_two_momentum_schedulers_on_adam_both_write_betas():
    opt = adam()
    first = MultiStepMomentum(opt, milestones=[1], gamma=0.5)
    second = ExponentialMomentum(opt, gamma=0.9)  # built after 'momentum' was mirrored
    first.step()
    second.step()
    assert opt.param_groups[0]["betas"] == pytest.approx((0.9 * 0.5 * 0.9, 0.999))


def test_momentum_scheduler_state_dict_on_adam(tmp_path):
    opt = adam()
    scheduler = CosineAnnealingMomentum(opt, T_max=6, eta_min=0.5)
    for _ in range(3):
        scheduler.step()
    torch.save(dict(opt=opt.state_dict(), sched=scheduler.state_dict()), tmp_path / "s.pth")
    want = []
    for _ in range(4):
        scheduler.step()
        want.append([g["betas"] for g in opt.param_groups])
    saved = torch.load(tmp_path / "s.pth", weights_only=True)
    opt2 = adam()
    scheduler2 = CosineAnnealingMomentum(opt2, T_max=6, eta_min=0.5)
    opt2.load_state_dict(saved["opt"])
    scheduler2.load_state_dict(saved["sched"])
    got = []
    for _ in range(4):
        scheduler2.step()
        got.append([g["betas"] for g in opt2.param_groups])
    assert got == want


def test_momentum_on_optimizer_without_momentum_or_betas():
    opt = torch.optim.Adagrad(params(), lr=0.1)
    with pytest.raises(ConfigError) as info:
        StepMomentum(opt, step_size=2)
    message = str(info.value)
    assert message.startswith("optimizer: StepMomentum schedules the momentum")
    assert "Adagrad" in message and "'momentum' nor 'betas'" in message
    assert "'lr_decay'" in message  # lists the keys the groups have


def test_reduce_on_plateau_lr_and_momentum_classes():
    opt = sgd()
    lr = ReduceOnPlateauLR(opt, patience=0, factor=0.5)
    momentum = ReduceOnPlateauMomentum(opt, patience=0, factor=0.5, monitor="acc", rule="greater")
    for metrics in (dict(loss=1.0, acc=10.0), dict(loss=2.0, acc=5.0)):
        lr.step()
        momentum.step()
        lr.step(metrics)
        momentum.step(metrics)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.01])
    assert [g["momentum"] for g in opt.param_groups] == pytest.approx([0.45, 0.25])


def test_reduce_on_plateau_momentum_on_adam_writes_betas():
    opt = adam()
    scheduler = ReduceOnPlateauMomentum(opt, patience=0, factor=0.5)
    scheduler.step(dict(loss=1.0))
    scheduler.step(dict(loss=1.0))
    assert opt.param_groups[1]["betas"] == pytest.approx((0.4, 0.99))


def test_lr_classes_have_no_param_name_argument():
    import inspect

    for cls in (ConstantLR, LinearLR, MultiStepLR, StepLR, CosineAnnealingLR, PolyLR):
        assert "param_name" not in inspect.signature(cls).parameters
    with pytest.raises(TypeError):
        StepLR(sgd(), step_size=2, param_name="lr")
