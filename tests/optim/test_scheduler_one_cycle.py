"""OneCycleParamScheduler / OneCycleLR against torch's documented 1cycle definition.

The closed form below is written from torch's OneCycleLR documentation: the value starts at
``max_lr/div_factor``, reaches ``max_lr`` at step ``pct_start*total_steps - 1``, and anneals
to ``initial/final_div_factor`` at step ``total_steps - 1`` (three_phase: back to the initial
value at ``2*pct_start*total_steps - 2`` first). torch's own OneCycleLR is a second oracle.
"""

from __future__ import annotations

import math

import pytest
import torch

import minirunner.optim.scheduler  # noqa: F401
from minirunner.optim.scheduler import OneCycleLR, OneCycleParamScheduler
from minirunner.utils import ConfigError


def sgd(lrs=(0.1, 0.2)):
    groups = [dict(params=[torch.nn.Parameter(torch.zeros(1))], lr=lr) for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=0.9)


def anneal(strategy, start, stop, pct):
    if strategy == "cos":
        return stop + (start - stop) / 2 * (1 + math.cos(math.pi * pct))
    return start + (stop - start) * pct


def one_cycle(step, eta_max, total, pct_start, strategy, div, final_div, three_phase):
    initial = eta_max / div
    low = initial / final_div
    peak_at = pct_start * total - 1
    if three_phase:
        phases = [(peak_at, initial, eta_max), (2 * pct_start * total - 2, eta_max, initial),
                  (total - 1, initial, low)]
    else:
        phases = [(peak_at, initial, eta_max), (total - 1, eta_max, low)]
    start_step = 0
    for i, (end_step, a, b) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            return anneal(strategy, a, b, (step - start_step) / (end_step - start_step))
        start_step = end_step


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_closed_form_and_torch(strategy, three_phase):
    total, pct, div, final_div = 20, 0.25, 10.0, 100.0
    opt = sgd()
    scheduler = OneCycleLR(
        opt, eta_max=[1.0, 2.0], total_steps=total, pct_start=pct, anneal_strategy=strategy,
        div_factor=div, final_div_factor=final_div, three_phase=three_phase, by_epoch=False,
    )
    torch_opt = sgd()
    torch_sched = torch.optim.lr_scheduler.OneCycleLR(
        torch_opt, max_lr=[1.0, 2.0], total_steps=total, pct_start=pct,
        anneal_strategy=strategy, div_factor=div, final_div_factor=final_div,
        three_phase=three_phase, cycle_momentum=False,
    )
    for step in range(total):
        if step:
            scheduler.step()
            torch_opt.step()
            torch_sched.step()
        for group, torch_group, peak in zip(opt.param_groups, torch_opt.param_groups, (1.0, 2.0)):
            want = one_cycle(step, peak, total, pct, strategy, div, final_div, three_phase)
            assert group["lr"] == pytest.approx(want, rel=1e-12), step
            assert group["lr"] == pytest.approx(torch_group["lr"], rel=1e-12), step
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / div / final_div)


def test_one_cycle_sets_the_value_and_ignores_the_current_one():
    """Not chainable: the value comes from the cycle, whatever the group held."""
    opt = sgd()
    scheduler = OneCycleParamScheduler(opt, "lr", eta_max=1.0, total_steps=10)
    opt.param_groups[0]["lr"] = 123.0
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(one_cycle(1, 1.0, 10, 0.3, "cos", 25, 1e4, False))


def test_total_steps_defaults_to_the_range():
    opt = sgd()
    scheduler = OneCycleLR(opt, eta_max=1.0, begin=2, end=12, by_epoch=False)
    assert scheduler.total_steps == 10
    for _ in range(11):
        scheduler.step()
    # Local step 9 = the end of the cycle.
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25 / 1e4)


def test_one_cycle_state_dict_round_trip(tmp_path):
    opt = sgd()
    scheduler = OneCycleLR(opt, eta_max=1.0, total_steps=12, anneal_strategy="linear")
    for _ in range(4):
        scheduler.step()
    torch.save(dict(o=opt.state_dict(), s=scheduler.state_dict()), tmp_path / "c.pth")
    want = []
    for _ in range(6):
        scheduler.step()
        want.append(opt.param_groups[1]["lr"])
    saved = torch.load(tmp_path / "c.pth", weights_only=True)
    opt2 = sgd()
    scheduler2 = OneCycleLR(opt2, eta_max=1.0, total_steps=12, anneal_strategy="linear")
    opt2.load_state_dict(saved["o"])
    scheduler2.load_state_dict(saved["s"])
    got = []
    for _ in range(6):
        scheduler2.step()
        got.append(opt2.param_groups[1]["lr"])
    assert got == want


def test_one_cycle_without_total_steps_or_end():
    with pytest.raises(ConfigError) as info:
        OneCycleLR(sgd(), eta_max=1.0)
    message = str(info.value)
    assert message.startswith("total_steps: OneCycleLR has neither total_steps nor an end")


def test_one_cycle_bad_strategy_and_eta_max_length():
    with pytest.raises(ConfigError, match=r"^anneal_strategy: OneCycleLR .*Did you mean 'cos'"):
        OneCycleLR(sgd(), eta_max=1.0, total_steps=10, anneal_strategy="cosine")
    with pytest.raises(ConfigError, match=r"^eta_max: OneCycleLR got 3 values"):
        OneCycleLR(sgd(), eta_max=[1.0, 2.0, 3.0], total_steps=10)


def test_one_cycle_stepped_past_total_steps():
    opt = sgd()
    scheduler = OneCycleLR(opt, eta_max=1.0, total_steps=5)
    for _ in range(5):
        scheduler.step()  # local step 5 = total_steps is still allowed, as in torch
    with pytest.raises(ConfigError, match=r"^total_steps: OneCycleLR was stepped 7 times"):
        scheduler.step()
