"""The step-order warning: ``scheduler.step()`` before the optimizer's first ``step()``.

As in the reference engine (and PyTorch), the first ``scheduler.step()`` after the
constructor warns when the optimizer has not stepped, or when ``optimizer.step`` was replaced
after the scheduler was built. Unlike them, steps that a wrapper holds back on purpose
(gradient accumulation, an AMP loss scaler skipping inf/NaN, an update skipped and recorded)
do not warn, and the watch costs nothing after the optimizer's first step.
"""

from __future__ import annotations

import gc
import warnings
import weakref

import pytest
import torch
from torch import nn

from minirunner.optim import AmpOptimWrapper, OptimWrapper
from minirunner.optim.scheduler import ExponentialLR, LinearLR, MultiStepLR, StepLR
from minirunner.runner import Runner
from runner_support import loader_cfg

BEFORE = "before the optimizer's first step"
REPLACED = "optimizer.step was replaced"


def _order_warnings(record) -> list[str]:
    return [str(w.message) for w in record if BEFORE in str(w.message) or REPLACED in str(w.message)]


def _model_and_sgd(lr=0.1):
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def _loss(model):
    return model(torch.randn(4, 2)).pow(2).mean()


def test_scheduler_step_before_optimizer_step_warns_once():
    model, optimizer = _model_and_sgd()
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        scheduler.step()
        scheduler.step()
    messages = _order_warnings(record)
    assert len(messages) == 1 and messages[0].startswith("StepLR.step() ran " + BEFORE)
    assert record[0].category is UserWarning and record[0].filename == __file__


def test_the_right_order_is_silent_and_the_probe_leaves_after_the_first_step():
    model, optimizer = _model_and_sgd()
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    assert "step" in optimizer.__dict__  # the probe stands in for the class's step
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            _loss(model).backward()
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
    assert _order_warnings(record) == []
    # Later steps call the class's own step directly: no per-step cost remains.
    assert "step" not in optimizer.__dict__
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_replacing_optimizer_step_after_building_warns():
    model, optimizer = _model_and_sgd()
    scheduler = ExponentialLR(optimizer, gamma=0.9)
    original = type(optimizer).step
    optimizer.step = lambda *args, **kwargs: original(optimizer, *args, **kwargs)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        optimizer.step()
        scheduler.step()
    messages = _order_warnings(record)
    assert len(messages) == 1 and messages[0].startswith("ExponentialLR: " + REPLACED)


def test_a_step_wrapper_installed_before_building_is_kept_and_called():
    model, optimizer = _model_and_sgd()
    calls = []
    original = type(optimizer).step

    def counting_step(*args, **kwargs):
        calls.append(1)
        return original(optimizer, *args, **kwargs)

    optimizer.step = counting_step
    scheduler = ExponentialLR(optimizer, gamma=0.9)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):
            _loss(model).backward()
            optimizer.step()
            scheduler.step()
    assert calls == [1, 1] and _order_warnings(record) == []
    assert optimizer.__dict__["step"] is counting_step  # put back after the first call


def test_torch_schedulers_can_wrap_the_step_afterwards():
    # torch's LR schedulers wrap optimizer.step through step.__func__/__self__.
    model, optimizer = _model_and_sgd()
    ours = MultiStepLR(optimizer, milestones=[2], gamma=0.1)
    theirs = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            _loss(model).backward()
            optimizer.step()
            theirs.step()
            ours.step()
    assert _order_warnings(record) == []
    assert not any("lr_scheduler.step()" in str(w.message) for w in record)


@pytest.mark.parametrize("on_bare_optimizer", [False, True])
def test_steps_held_back_by_accumulation_do_not_warn(on_bare_optimizer):
    model, optimizer = _model_and_sgd()
    wrapper = OptimWrapper(optimizer, accumulative_counts=4)
    scheduler = LinearLR(optimizer if on_bare_optimizer else wrapper, start_factor=0.1,
                         end=8, by_epoch=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(8):
            wrapper.update_params(_loss(model))
            scheduler.step()
    assert _order_warnings(record) == []


def test_a_step_the_loss_scaler_skips_does_not_warn():
    model, optimizer = _model_and_sgd()
    wrapper = AmpOptimWrapper(optimizer=optimizer, dtype="float16")  # a scaler, also on CPU
    scheduler = ExponentialLR(wrapper, gamma=0.5)
    before = model.weight.detach().clone()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        wrapper.update_params(model(torch.randn(4, 2)).sum() * float("inf"))
        scheduler.step()
    assert wrapper.last_step_skipped and torch.equal(model.weight, before)
    assert _order_warnings(record) == []


def test_an_update_skipped_on_purpose_is_recorded_or_warned_about():
    model, optimizer = _model_and_sgd()
    wrapper = OptimWrapper(optimizer)
    scheduler = ExponentialLR(wrapper, gamma=0.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        scheduler.step()  # no update, nothing recorded: the reference would warn too
    assert len(_order_warnings(record)) == 1

    model, optimizer = _model_and_sgd()
    wrapper = OptimWrapper(optimizer)
    scheduler = ExponentialLR(wrapper, gamma=0.5)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        wrapper.record_skipped_update()  # e.g. a guard dropped a non-finite loss
        scheduler.step()
    assert _order_warnings(record) == [] and wrapper.skipped_updates == 1


def test_the_watch_is_not_state_and_keeps_nothing_alive():
    model, optimizer = _model_and_sgd()
    wrapper = OptimWrapper(optimizer)
    scheduler = StepLR(wrapper, step_size=1)
    assert not any("watch" in key for key in scheduler.state_dict())
    refs = [weakref.ref(optimizer), weakref.ref(wrapper)]
    del optimizer, wrapper, scheduler
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


def test_a_runner_with_accumulation_amp_and_warm_up_does_not_warn(tmp_path):
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(24, 4, shuffle=True),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(
            type="AmpOptimWrapper", dtype="bfloat16", accumulative_counts=4,
            clip_grad=dict(max_norm=1.0), optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
        ),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0, by_epoch=False, begin=0, end=5),
            dict(type="MultiStepLR", by_epoch=True, milestones=[1], gamma=0.1),
        ],
        default_hooks=dict(logger=dict(interval=2), checkpoint=dict(interval=1)),
        randomness=dict(seed=3),
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        runner = Runner.from_cfg(cfg)
        runner.train()
    assert _order_warnings(record) == []
    # The warm-up from zero ran: 12 iterations, warm-up over [0, 5), decay after epoch 1.
    assert runner.optim_wrapper.get_lr()["lr"] == [pytest.approx(0.1 * 0.1)]
