"""Every `<Name>ParamScheduler` against the closed forms of DESIGN.md, plus the base contract.

Expected values are computed here, step by step, from the closed forms (the reference's:
Linear, Constant and Poly reach their end value at step ``end - 1``), never from the
implementation's own output.
"""

from __future__ import annotations

import io
import logging
import math

import pytest
import torch

import minirunner.optim.scheduler  # noqa: F401  (installs the PARAM_SCHEDULERS build function)
from minirunner.optim.scheduler import (
    ConstantParamScheduler,
    CosineAnnealingParamScheduler,
    CosineRestartParamScheduler,
    ExponentialParamScheduler,
    LinearParamScheduler,
    MultiStepParamScheduler,
    PolyParamScheduler,
    StepParamScheduler,
    _ParamScheduler,
)
from minirunner.utils import ConfigError

REL = 1e-9


def sgd(lrs=(0.1, 0.05), weight_decays=(0.01, 0.02), momentum=0.9):
    groups = [
        dict(params=[torch.nn.Parameter(torch.zeros(2))], lr=lr, weight_decay=wd)
        for lr, wd in zip(lrs, weight_decays)
    ]
    return torch.optim.SGD(groups, lr=lrs[0], momentum=momentum)


# ---------------------------------------------------------------- closed forms (DESIGN.md)
# Each takes the base value b, the local step t = step - begin and the range length
# n = end - begin, and gives the value of one scheduler alone.
def constant(factor):
    return lambda b, t, n: b * factor if t < n - 1 else b


def exponential(gamma):
    return lambda b, t, n: b * gamma**t


def linear(start, end):
    return lambda b, t, n: b * (start + (end - start) * min(t, n - 1) / (n - 1))


def multistep(milestones, gamma):
    return lambda b, t, n: b * gamma ** sum(1 for m in milestones if m <= t)


def poly(eta_min, power):
    return lambda b, t, n: eta_min + (b - eta_min) * (1 - min(t, n - 1) / (n - 1)) ** power


def step_decay(step_size, gamma):
    return lambda b, t, n: b * gamma ** (t // step_size)


def cosine(eta_min=None, ratio=None, T_max=None):
    def form(b, t, n):
        low = b * ratio if ratio is not None else eta_min
        period = T_max or n
        return low + (b - low) * (1 + math.cos(math.pi * t / period)) / 2

    return form


def cosine_restart(periods, weights, eta_min):
    def form(b, t, n):
        start = 0
        for period, weight in zip(periods, weights):
            if t < start + period:
                peak = b * weight
                return eta_min + (peak - eta_min) * (1 + math.cos(math.pi * (t - start) / period)) / 2
            start += period
        return form(b, start - 1, n)  # past the last cycle the value holds

    return form


def alone(form, b, step, begin, end):
    """The value at global step ``step`` of a scheduler active on [begin, end)."""
    if step < begin:
        return b
    return form(b, min(step, end - 1) - begin, end - begin)


FAMILIES = [
    (ConstantParamScheduler, dict(factor=0.5), constant(0.5)),
    (ExponentialParamScheduler, dict(gamma=0.8), exponential(0.8)),
    (LinearParamScheduler, dict(start_factor=0.25, end_factor=0.75), linear(0.25, 0.75)),
    (MultiStepParamScheduler, dict(milestones=[2, 5], gamma=0.5), multistep([2, 5], 0.5)),
    (PolyParamScheduler, dict(eta_min=0.001, power=2.0), poly(0.001, 2.0)),
    (StepParamScheduler, dict(step_size=3, gamma=0.5), step_decay(3, 0.5)),
    (CosineAnnealingParamScheduler, dict(eta_min=0.001), cosine(eta_min=0.001)),
    (CosineAnnealingParamScheduler, dict(eta_min_ratio=0.1), cosine(ratio=0.1)),
    (CosineAnnealingParamScheduler, dict(T_max=3, eta_min=0.0), cosine(0.0, T_max=3)),
    (
        CosineRestartParamScheduler,
        dict(periods=[3, 4], restart_weights=[1.0, 0.5], eta_min=0.001),
        cosine_restart([3, 4], [1.0, 0.5], 0.001),
    ),
]
FAMILY_IDS = [f"{cls.__name__}-{sorted(kw)}" for cls, kw, _ in FAMILIES]


@pytest.mark.parametrize("begin,end", [(0, 8), (3, 9)])
@pytest.mark.parametrize("param_name", ["lr", "weight_decay"])
@pytest.mark.parametrize("cls,kwargs,form", FAMILIES, ids=FAMILY_IDS)
def test_family_follows_closed_form(cls, kwargs, form, param_name, begin, end):
    opt = sgd()
    bases = [g[param_name] for g in opt.param_groups]
    scheduler = cls(opt, param_name=param_name, begin=begin, end=end, **kwargs)
    for step in range(14):
        if step:
            scheduler.step()
        for group, b in zip(opt.param_groups, bases):
            want = alone(form, b, step, begin, end)
            assert group[param_name] == pytest.approx(want, rel=REL, abs=1e-15), (step, want)
        assert scheduler.get_last_value() == [g[param_name] for g in opt.param_groups]
        # Only the scheduled key moves.
        other = "weight_decay" if param_name == "lr" else "lr"
        assert [g[other] for g in opt.param_groups] == [
            dict(lr=0.1, weight_decay=0.01)[other], dict(lr=0.05, weight_decay=0.02)[other]
        ]


def test_construction_applies_step_zero_and_records_initial_value():
    opt = sgd()
    LinearParamScheduler(opt, "lr", start_factor=0.1, end=5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.05]
    # A second scheduler of the same parameter keeps the first base value.
    second = ExponentialParamScheduler(opt, "lr", gamma=0.5)
    assert second.base_values == [0.1, 0.05]


def test_overlapping_schedulers_multiply():
    """Linear warm-up over [0, 6) and a cosine over [0, 10) at once: values multiply."""
    opt = sgd()
    warm = LinearParamScheduler(opt, "lr", start_factor=0.2, end=6)
    cos = CosineAnnealingParamScheduler(opt, "lr", eta_min=0.0, end=10)
    exp = ExponentialParamScheduler(opt, "lr", gamma=0.9, begin=2, end=7)
    for step in range(13):
        if step:
            warm.step()
            cos.step()
            exp.step()
        for group, b in zip(opt.param_groups, (0.1, 0.05)):
            want = (
                alone(linear(0.2, 1.0), b, step, 0, 6)
                * alone(cosine(0.0), 1.0, step, 0, 10)
                * alone(exponential(0.9), 1.0, step, 2, 7)
            )
            assert group["lr"] == pytest.approx(want, rel=REL), step


def test_gap_between_schedulers_holds_the_value():
    opt = sgd()
    warm = LinearParamScheduler(opt, "lr", start_factor=0.2, end_factor=0.6, end=3)
    decay = StepParamScheduler(opt, "lr", step_size=2, gamma=0.5, begin=6, end=12)
    for step in range(15):
        if step:
            warm.step()
            decay.step()
        b = 0.1
        if step <= 2:
            want = b * (0.2 + 0.4 * step / 2)
        elif step < 6:
            want = b * 0.6  # the gap: the warm-up's last value holds
        else:
            want = b * 0.6 * 0.5 ** ((min(step, 11) - 6) // 2)
        assert opt.param_groups[0]["lr"] == pytest.approx(want, rel=REL), step


def test_begin_after_zero_counts_milestones_from_begin():
    opt = sgd()
    scheduler = MultiStepParamScheduler(opt, "lr", milestones=[2, 4], gamma=0.1, begin=3)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(9):
        scheduler.step()
        seen.append(opt.param_groups[0]["lr"])
    # The milestones fire at global steps 3 + 2 and 3 + 4.
    want = [0.1] * 5 + [0.01] * 2 + [0.001] * 3
    assert seen == pytest.approx(want, rel=REL)
    assert scheduler.last_step == 6  # counted from begin


def test_end_is_exclusive():
    opt = sgd()
    scheduler = ExponentialParamScheduler(opt, "lr", gamma=0.5, end=4)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(6):
        scheduler.step()
        seen.append(opt.param_groups[0]["lr"])
    # Steps 1, 2, 3 decay; step 4 (= end) and later do not.
    assert seen == pytest.approx([0.1, 0.05, 0.025, 0.0125, 0.0125, 0.0125, 0.0125])


def test_cosine_past_t_max_rises_again_like_the_closed_form():
    """Past T_max the reference's special step (at the trough) keeps it on the cosine."""
    opt = sgd()
    scheduler = CosineAnnealingParamScheduler(opt, "lr", T_max=4, eta_min=0.01)
    for step in range(20):
        if step:
            scheduler.step()
        want = 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * step / 4)) / 2
        assert opt.param_groups[0]["lr"] == pytest.approx(want, rel=1e-9), step


def test_multistep_repeated_milestone_decays_twice():
    opt = sgd()
    scheduler = MultiStepParamScheduler(opt, "lr", milestones=[1, 1, 3], gamma=0.5)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(4):
        scheduler.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == pytest.approx([0.1, 0.025, 0.025, 0.0125, 0.0125])


# ---------------------------------------------------------------- state dicts
STATEFUL = FAMILIES + [
    (
        MultiStepParamScheduler,
        dict(milestones=[1, 3, 6], gamma=0.5, begin=2),
        None,
    ),
]


@pytest.mark.parametrize("cls,kwargs,_", STATEFUL, ids=[f"{c.__name__}-{i}" for i, (c, _k, _f) in enumerate(STATEFUL)])
def test_state_dict_mid_schedule_continues_the_same_sequence(cls, kwargs, _, tmp_path):
    def build(opt):
        warm = LinearParamScheduler(opt, "lr", start_factor=0.5, end=3)
        return [warm, cls(opt, param_name="lr", end=12, **kwargs)]

    opt = sgd()
    schedulers = build(opt)
    for _step in range(5):
        for s in schedulers:
            s.step()
    path = tmp_path / "ckpt.pth"
    torch.save(
        dict(optimizer=opt.state_dict(), schedulers=[s.state_dict() for s in schedulers]), path
    )
    reference = []
    for _step in range(9):
        for s in schedulers:
            s.step()
        reference.append([g["lr"] for g in opt.param_groups])

    # Resume as the runner does: build fresh, load the optimizer, then the schedulers.
    checkpoint = torch.load(path, weights_only=True)
    fresh_opt = sgd()
    fresh = build(fresh_opt)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    for s, state in zip(fresh, checkpoint["schedulers"]):
        s.load_state_dict(state)
    resumed = []
    for _step in range(9):
        for s in fresh:
            s.step()
        resumed.append([g["lr"] for g in fresh_opt.param_groups])
    assert resumed == reference  # bit for bit


def test_state_dict_is_a_copy_and_excludes_the_optimizer():
    opt = sgd()
    scheduler = StepParamScheduler(opt, "lr", step_size=1, gamma=0.5)
    state = scheduler.state_dict()
    assert "optimizer" not in state
    scheduler.step()
    assert state["_last_value"] == [0.1, 0.05]  # not changed by later steps
    assert state["last_step"] == 0


def test_load_state_dict_from_another_scheduler_type_is_refused():
    opt = sgd()
    step = StepParamScheduler(opt, "lr", step_size=2)
    cos = CosineAnnealingParamScheduler(opt, "lr", T_max=5)
    with pytest.raises(ValueError, match="StepParamScheduler.load_state_dict.*'T_max'"):
        step.load_state_dict(cos.state_dict())


def test_last_step_resumes_from_initial_values_in_the_groups():
    opt = sgd()
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    scheduler = StepParamScheduler(opt, "lr", step_size=2, gamma=0.5, last_step=2)
    # Construction advances to step 3; the next step is 4, a multiple of step_size.
    assert scheduler.last_step == 3
    scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def test_last_step_without_initial_values_is_a_config_error():
    with pytest.raises(ConfigError, match=r"last_step: StepParamScheduler .*'initial_lr'"):
        StepParamScheduler(sgd(), "lr", step_size=2, last_step=4)


# ---------------------------------------------------------------- optimizers and wrappers
class DuckWrapper:
    """A minimal optimizer wrapper: ``optimizer`` plus ``param_groups`` with a defaults group,
    as the reference's OptimWrapper shows when the optimizer has several groups."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_param_settings = dict(params=torch.zeros(1), **optimizer.defaults)

    @property
    def param_groups(self):
        return self.optimizer.param_groups + [self.base_param_settings]


def test_wrapper_groups_and_its_defaults_group_are_scheduled():
    opt = sgd()
    wrapper = DuckWrapper(opt)
    scheduler = MultiStepParamScheduler(wrapper, "lr", milestones=[1], gamma=0.1)
    scheduler.step()
    assert [g["lr"] for g in wrapper.param_groups] == pytest.approx([0.01, 0.005, 0.01])
    assert scheduler.get_last_value() == pytest.approx([0.01, 0.005, 0.01])


def test_step_reads_only_param_groups():
    """No optimizer state is read or copied: step() touches param_groups and nothing else."""

    class Strict:
        def __init__(self, optimizer):
            self._groups = optimizer.param_groups

        def __getattr__(self, name):
            raise AssertionError(f"scheduler touched optimizer.{name}")

        @property
        def param_groups(self):
            return self._groups

    scheduler = CosineAnnealingParamScheduler(Strict(sgd()), "lr", T_max=10)
    for _ in range(12):
        scheduler.step()


def test_verbose_logs_each_value():
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    try:
        StepParamScheduler(sgd(), "lr", step_size=1, gamma=0.5, verbose=True).step()
    finally:
        logger.removeHandler(handler)
    text = records.getvalue()
    assert "StepParamScheduler: lr of param group 1 set to 2.5000e-02" in text


def test_subclass_in_the_reference_style_with_get_value():
    class Halve(_ParamScheduler):
        def _get_value(self):
            return [g[self.param_name] / 2 for g in self.optimizer.param_groups]

    opt = sgd()
    scheduler = Halve(opt, "lr", end=3)
    for _ in range(4):
        scheduler.step()
    # Steps 0, 1, 2 halve; 3 and 4 are past the end.
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 8)


# ---------------------------------------------------------------- bad input
def test_begin_not_before_end_names_the_scheduler_and_argument():
    with pytest.raises(ConfigError, match=r"^end: LinearParamScheduler got begin=5 and end=5"):
        LinearParamScheduler(sgd(), "lr", begin=5, end=5)


def test_milestones_not_increasing():
    with pytest.raises(
        ConfigError, match=r"^milestones: MultiStepParamScheduler got milestones=\[5, 2\].*"
        r"not in increasing order; list them as \[2, 5\]"
    ):
        MultiStepParamScheduler(sgd(), "lr", milestones=[5, 2])


def test_param_name_missing_lists_the_keys_that_exist():
    with pytest.raises(ConfigError) as info:
        StepParamScheduler(sgd(), "lrr", step_size=1)
    message = str(info.value)
    assert message.startswith("param_name: StepParamScheduler schedules 'lrr'")
    assert "'lr'" in message and "'weight_decay'" in message and "'momentum'" in message
    assert "Did you mean 'lr'?" in message


def test_fractional_steps_without_conversion():
    with pytest.raises(ConfigError, match=r"^end: ExponentialParamScheduler got end=2.5.*"
                       "convert_to_iter_based"):
        ExponentialParamScheduler(sgd(), "lr", gamma=0.5, end=2.5)


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="StepParamScheduler needs a torch optimizer"):
        StepParamScheduler(object(), "lr", step_size=1)


@pytest.mark.parametrize(
    "cls,kwargs,key",
    [
        (CosineRestartParamScheduler, dict(periods=[2, 2], eta_min=0), "restart_weights"),
        (CosineRestartParamScheduler, dict(periods=[2]), "eta_min"),
        (CosineAnnealingParamScheduler, dict(eta_min=0, eta_min_ratio=0.1, T_max=2), "eta_min_ratio"),
        (CosineAnnealingParamScheduler, dict(), "T_max"),
        # The reference accepts start_factor in [0, 1] (0 warms up from zero).
        (LinearParamScheduler, dict(start_factor=-0.1), "start_factor"),
        (ConstantParamScheduler, dict(factor=1.5), "factor"),
        (StepParamScheduler, dict(step_size=0), "step_size"),
    ],
)
def test_other_bad_arguments_name_the_argument(cls, kwargs, key):
    with pytest.raises(ConfigError, match=rf"^{key}: {cls.__name__} "):
        cls(sgd(), "lr", **kwargs)
