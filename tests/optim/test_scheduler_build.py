"""Building schedulers from configs: PARAM_SCHEDULERS.build, convert_to_iter_based, the
spec's param_scheduler recipes stepped the way the runner steps them, several optimizers.

The runner steps iteration-based schedulers after every iteration and epoch-based ones after
every epoch; `train` below does the same. Expected values come from the closed forms.
"""

from __future__ import annotations

import math

import pytest
import torch

import minirunner.optim.scheduler  # noqa: F401  (installs PARAM_SCHEDULERS.build_func)
from minirunner.optim.scheduler import (
    CosineAnnealingLR,
    LinearLR,
    StepLR,
    build_param_schedulers,
    build_scheduler_from_cfg,
)
from minirunner.registry import PARAM_SCHEDULERS
from minirunner.utils import ConfigError


def sgd(lr=0.1, momentum=0.9):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=momentum)


def build(cfg, opt, epoch_length=None):
    return PARAM_SCHEDULERS.build(cfg, default_args=dict(optimizer=opt, epoch_length=epoch_length))


def train(opt, schedulers, max_epochs, epoch_length, key="lr"):
    """The value used by every iteration, stepping schedulers as the runner's hook does."""
    used = []
    for _epoch in range(max_epochs):
        for _it in range(epoch_length):
            used.append(opt.param_groups[0][key])
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return used


def test_registry_uses_the_scheduler_build_function():
    assert PARAM_SCHEDULERS.build_func is build_scheduler_from_cfg


def test_epoch_length_is_dropped_when_not_converting():
    opt = sgd()
    scheduler = build(dict(type="StepLR", step_size=2), opt, epoch_length=5)
    assert isinstance(scheduler, StepLR) and scheduler.step_size == 2 and scheduler.by_epoch


def test_convert_to_iter_based_with_a_fractional_end():
    opt = sgd()
    scheduler = build(
        dict(type="LinearLR", start_factor=0.2, by_epoch=True, end=1.5, convert_to_iter_based=True),
        opt,
        epoch_length=4,
    )
    assert (scheduler.begin, scheduler.end, scheduler.by_epoch) == (0, 6, False)
    seen = train(opt, [scheduler], max_epochs=3, epoch_length=4)
    # 1.5 epochs of 4 iterations: the factor reaches 1 at iteration 5 (= end - 1).
    want = [0.1 * (0.2 + 0.8 * min(i, 5) / 5) for i in range(12)]
    assert seen == pytest.approx(want, rel=1e-12)


def test_convert_fractional_begin_and_milestones():
    opt = sgd()
    scheduler = build(
        dict(type="MultiStepLR", milestones=[1.25, 2], begin=0.5, end=3.9,
             convert_to_iter_based=True),
        opt,
        epoch_length=4,
    )
    # begin 0.5*4 = 2, end int(15.6) = 15, milestones 5 and 8 iterations after begin.
    assert (scheduler.begin, scheduler.end) == (2, 15)
    assert scheduler.milestones == {5: 1, 8: 1}
    seen = train(opt, [scheduler], max_epochs=4, epoch_length=4)
    want = [0.1 * 0.1 ** ((i >= 7) + (i >= 10)) for i in range(16)]
    assert seen == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "cfg,attribute,value",
    [
        (dict(type="StepLR", step_size=2), "step_size", 6),
        (dict(type="CosineAnnealingLR", T_max=1.5), "T_max", 4.5),
        (dict(type="CosineAnnealingLR", T_max=2), "T_max", 6),
        (dict(type="CosineAnnealingLR", end=4), "T_max", 12),
        (dict(type="CosineRestartLR", periods=[1, 2], restart_weights=[1, 0.5], eta_min=0.0),
         "periods", [3, 6]),
        (dict(type="OneCycleLR", eta_max=1.0, total_steps=2), "total_steps", 6),
        (dict(type="CosineAnnealingMomentum", T_max=1), "T_max", 3),
    ],
)
def test_convert_scales_every_length_argument(cfg, attribute, value):
    scheduler = build(dict(cfg, convert_to_iter_based=True), sgd(), epoch_length=3)
    assert getattr(scheduler, attribute) == value
    assert scheduler.by_epoch is False


def test_build_iter_from_epoch_classmethod_directly():
    opt = sgd()
    scheduler = CosineAnnealingLR.build_iter_from_epoch(opt, T_max=2, begin=1, end=3, epoch_length=5)
    assert (scheduler.begin, scheduler.end, scheduler.T_max, scheduler.by_epoch) == (5, 15, 10, False)


def test_a_subclass_with_its_own_build_iter_from_epoch_is_used():
    calls = []

    class Custom(StepLR):
        @classmethod
        def build_iter_from_epoch(cls, *args, epoch_length=None, **kwargs):
            calls.append(epoch_length)
            return cls(*args, **dict(kwargs, by_epoch=False))

    scheduler = build(dict(type=Custom, step_size=2, convert_to_iter_based=True), sgd(), 7)
    assert calls == [7] and scheduler.step_size == 2 and scheduler.by_epoch is False


# ---------------------------------------------------------------- the spec's recipes
def test_spec_warmup_by_iteration_then_multistep_by_epoch():
    """Spec: LinearLR warm-up over the first iterations (by_epoch=False), then MultiStepLR
    by epoch (scaled down: 6 warm-up iterations, milestones [2, 3], 4 iterations an epoch)."""
    opt = sgd()
    cfg = [
        dict(type="LinearLR", start_factor=0.001, by_epoch=False, end=6),
        dict(type="MultiStepLR", by_epoch=True, milestones=[2, 3], gamma=0.1),
    ]
    schedulers = build_param_schedulers(cfg, opt, epoch_length=4, max_epochs=4, max_iters=16)
    assert schedulers[1].end == 4  # filled from the train loop
    seen = train(opt, schedulers, max_epochs=4, epoch_length=4)
    want = []
    for i in range(16):
        epoch = i // 4
        warm = 0.001 + 0.999 * min(i, 5) / 5
        want.append(0.1 * warm * 0.1 ** ((epoch >= 2) + (epoch >= 3)))
    assert seen == pytest.approx(want, rel=1e-9)


def test_spec_converted_warmup_then_cosine_by_epoch():
    """Spec: LinearLR over epochs [0, 10) converted to iterations, CosineAnnealingLR from
    epoch 10 (scaled down: warm-up 2 epochs, 5 epochs of 3 iterations)."""
    opt = sgd()
    cfg = [
        dict(type="LinearLR", start_factor=0.001, by_epoch=True, end=2, convert_to_iter_based=True),
        dict(type="CosineAnnealingLR", by_epoch=True, begin=2),
    ]
    schedulers = build_param_schedulers(cfg, opt, epoch_length=3, max_epochs=5)
    assert (schedulers[0].end, schedulers[0].by_epoch) == (6, False)
    assert (schedulers[1].begin, schedulers[1].end, schedulers[1].T_max) == (2, 5, 3)
    seen = train(opt, schedulers, max_epochs=5, epoch_length=3)
    want = []
    for i in range(15):
        epoch = i // 3
        warm = 0.001 + 0.999 * min(i, 5) / 5
        cos = 1.0 if epoch < 2 else (1 + math.cos(math.pi * (epoch - 2) / 3)) / 2
        want.append(0.1 * warm * cos)
    assert seen == pytest.approx(want, rel=1e-9)


def test_spec_lr_and_momentum_schedulers_together():
    opt = sgd(momentum=0.9)
    cfg = [
        dict(type="LinearLR", start_factor=0.5, by_epoch=False, end=4),
        dict(type="LinearMomentum", start_factor=0.001, by_epoch=False, begin=0, end=10),
    ]
    schedulers = build_param_schedulers(cfg, opt)
    momenta = train(opt, schedulers, max_epochs=3, epoch_length=4, key="momentum")
    assert momenta == pytest.approx([0.9 * (0.001 + 0.999 * min(i, 9) / 9) for i in range(12)])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_spec_single_dict_config():
    opt = sgd()
    schedulers = build_param_schedulers(
        dict(type="MultiStepLR", by_epoch=True, milestones=[1, 3], gamma=0.1), opt, max_epochs=4
    )
    assert len(schedulers) == 1
    assert train(opt, schedulers, 4, 1) == pytest.approx([0.1, 0.01, 0.01, 0.001])
    opt = sgd()
    cosine = build_param_schedulers(dict(type="CosineAnnealingLR", by_epoch=True, T_max=4), opt)
    assert train(opt, cosine, 4, 1) == pytest.approx(
        [0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    )


# ---------------------------------------------------------------- several optimizers
class DuckWrapper:
    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def param_groups(self):
        return self.optimizer.param_groups


class DuckWrapperDict:
    """Shaped like the reference's OptimWrapperDict: items(), and param_groups as a dict."""

    def __init__(self, **wrappers):
        self._wrappers = wrappers

    def items(self):
        return self._wrappers.items()

    @property
    def param_groups(self):
        return {name: w.param_groups for name, w in self._wrappers.items()}


@pytest.mark.parametrize("container", [dict, DuckWrapperDict])
def test_dict_of_lists_keyed_by_optimizer(container):
    gen, disc = DuckWrapper(sgd(lr=0.1)), DuckWrapper(sgd(lr=0.2))
    wrappers = container(generator=gen, discriminator=disc)
    cfg = dict(
        generator=[dict(type="StepLR", step_size=1, gamma=0.5, by_epoch=False)],
        discriminator=dict(type="ExponentialLR", gamma=0.9, by_epoch=False),
    )
    schedulers = build_param_schedulers(cfg, wrappers)
    assert sorted(schedulers) == ["discriminator", "generator"]
    for s in schedulers["generator"] + schedulers["discriminator"]:
        s.step()
        s.step()
    assert gen.param_groups[0]["lr"] == pytest.approx(0.025)
    assert disc.param_groups[0]["lr"] == pytest.approx(0.2 * 0.81)


def test_a_list_is_built_once_per_optimizer():
    a, b = sgd(lr=0.1), sgd(lr=0.3)
    schedulers = build_param_schedulers([dict(type="LinearLR", start_factor=0.5)], dict(a=a, b=b),
                                        max_epochs=3)
    assert schedulers["a"][0] is not schedulers["b"][0]
    assert [a.param_groups[0]["lr"], b.param_groups[0]["lr"]] == pytest.approx([0.05, 0.15])


def test_optimizer_without_an_entry_has_no_schedulers():
    schedulers = build_param_schedulers(dict(a=[dict(type="StepLR", step_size=1)]),
                                        dict(a=sgd(), b=sgd()))
    assert schedulers["b"] == []


def test_unknown_optimizer_name():
    with pytest.raises(ConfigError, match=r"^param_scheduler: names optimizers 'genertor'.*"
                       r"Did you mean 'generator'"):
        build_param_schedulers(dict(genertor=[dict(type="StepLR", step_size=1)]),
                               dict(generator=sgd()))


def test_keyed_dict_with_one_optimizer():
    with pytest.raises(ConfigError, match=r"^param_scheduler: is a dict keyed by 'generator'"):
        build_param_schedulers(dict(generator=[dict(type="StepLR", step_size=1)]), sgd())


def test_built_schedulers_pass_through_and_none_is_empty():
    opt = sgd()
    ready = StepLR(opt, step_size=1)
    assert build_param_schedulers([ready], opt) == [ready]
    assert build_param_schedulers(None, opt) == []


def test_given_end_is_kept_and_iteration_end_uses_max_iters():
    opt = sgd()
    schedulers = build_param_schedulers(
        [dict(type="StepLR", step_size=1, end=2), dict(type="ExponentialLR", gamma=0.9, by_epoch=False)],
        opt, max_epochs=5, max_iters=50,
    )
    assert [s.end for s in schedulers] == [2, 50]


# ---------------------------------------------------------------- bad input
def test_convert_with_by_epoch_false():
    with pytest.raises(ConfigError) as info:
        build(dict(type="LinearLR", by_epoch=False, end=5, convert_to_iter_based=True), sgd(), 10)
    assert str(info.value).startswith(
        "convert_to_iter_based: LinearLR has convert_to_iter_based=True and by_epoch=False"
    )


def test_convert_without_epoch_length():
    with pytest.raises(ConfigError, match=r"^epoch_length: StepLR has convert_to_iter_based=True "
                       r"but epoch_length=None"):
        build(dict(type="StepLR", step_size=1, convert_to_iter_based=True), sgd())


def test_convert_reduce_on_plateau():
    with pytest.raises(ConfigError, match=r"^convert_to_iter_based: ReduceOnPlateauLR only runs "
                       "per epoch"):
        build(dict(type="ReduceOnPlateauLR", convert_to_iter_based=True), sgd(), 10)


@pytest.mark.parametrize("convert", [False, True])
def test_misspelled_argument_gets_a_suggestion(convert):
    cfg = dict(type="MultiStepLR", milestones=[1], gama=0.5)
    if convert:
        cfg["convert_to_iter_based"] = True
    with pytest.raises(ConfigError, match=r"MultiStepLR got unexpected argument.*'gama'.*"
                       r"Did you mean 'gamma'"):
        build(cfg, sgd(), 4)


def test_unknown_type_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"'CosineAnealingLR' is not registered.*"
                       r"Did you mean 'CosineAnnealingLR'"):
        build(dict(type="CosineAnealingLR", convert_to_iter_based=True), sgd(), 4)


def test_errors_name_the_position_in_the_list():
    cfg = [dict(type="LinearLR", end=3, by_epoch=False),
           dict(type="MultiStepLR", milestones=[4, 2])]
    with pytest.raises(ConfigError, match=r"^param_scheduler\[1\]\.milestones: MultiStepLR got "
                       r"milestones=\[4, 2\]"):
        build_param_schedulers(cfg, sgd(), max_epochs=5)
    with pytest.raises(ConfigError, match=r"^param_scheduler\.b\[0\]\.end: LinearLR got begin=3 "
                       "and end=3"):
        build_param_schedulers(dict(b=[dict(type="LinearLR", begin=3, end=3)]), dict(b=sgd()))


def test_one_cycle_without_total_steps_needs_the_runner():
    with pytest.raises(ConfigError, match=r"^total_steps: OneCycleLR has neither total_steps"):
        build(dict(type="OneCycleLR", eta_max=0.1, by_epoch=False), sgd())
    # With the runner's train loop length as the end, it builds.
    [scheduler] = build_param_schedulers(
        [dict(type="OneCycleLR", eta_max=0.1, by_epoch=False)], sgd(), max_iters=40
    )
    assert scheduler.total_steps == 40


def test_warmup_is_linear_lr_instance():
    opt = sgd()
    [warm] = build_param_schedulers([dict(type="LinearLR", by_epoch=False, end=3)], opt)
    assert isinstance(warm, LinearLR)
