"""optim_wrapper.nonfinite='skip' inside the wrappers: a bad window's step is skipped and its
gradients dropped, accumulation goes on; with fp16 the loss scaler holds on such a skip, while
its own skips (inf/NaN gradients of a finite loss) keep the reference's behaviour and are
reported by the logger."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minirunner.optim.wrappers import AmpOptimWrapper, OptimWrapper
from minirunner.runner import Runner
from runner_support import loader_cfg

NAN = float("nan")


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def _loss(model: nn.Module, factor: float = 1.0) -> torch.Tensor:
    return model(torch.ones(2, 3)).pow(2).mean() * factor


def test_a_bad_window_is_dropped_and_accumulation_goes_on():
    model, reference = _model(), _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                           accumulative_counts=2, nonfinite=dict(action="skip"))
    plain = OptimWrapper(torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9), accumulative_counts=2)
    for wrapper_, model_ in ((wrapper, model), (plain, reference)):
        wrapper_.initialize_count_status(model_, 0, 6)
    # Window 1 (iterations 1-2) steps on both; window 2 has a NaN in its first iteration.
    for factor in (1.0, 1.0):
        wrapper.update_params(_loss(model, factor))
        plain.update_params(_loss(reference, factor))
    before = model.weight.detach().clone()
    wrapper.update_params(_loss(model, NAN))
    wrapper.update_params(_loss(model))
    assert torch.equal(model.weight, before) and model.weight.grad is None  # skipped, dropped
    assert wrapper.inner_count == 4 and wrapper.nonfinite.skipped == 1 and wrapper.nonfinite.consecutive == 1
    # Window 3 steps as the plain wrapper's second window did: the optimizer state is untouched.
    for _ in range(2):
        wrapper.update_params(_loss(model))
        plain.update_params(_loss(reference))
    assert torch.equal(model.weight, reference.weight) and wrapper.nonfinite.consecutive == 0


def test_default_and_off_do_not_check_in_the_step():
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.nonfinite.action == "raise" and wrapper._own_steps  # the inline path, no check
    wrapper.update_params(_loss(model, NAN))
    assert torch.isnan(model.weight).all()


def _fp16_wrapper(model: nn.Module, **kwargs) -> AmpOptimWrapper:
    try:
        return AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), dtype="float16", **kwargs)
    except Exception as error:  # an old torch without a CPU GradScaler
        pytest.skip(f"no float16 loss scaler on CPU here: {error}")


def test_fp16_skip_of_a_nan_loss_holds_the_scaler():
    model = _model()
    wrapper = _fp16_wrapper(model, loss_scale=dict(init_scale=1024.0), nonfinite=dict(action="skip"),
                            clip_grad=dict(max_norm=1.0))
    wrapper.update_params(_loss(model))
    scale, before = wrapper.loss_scaler.get_scale(), model.weight.detach().clone()
    with wrapper.optim_context(model):
        loss = _loss(model, NAN)
    wrapper.update_params(loss.float())
    assert wrapper.nonfinite.skipped == 1 and wrapper.skipped_steps == 0
    assert wrapper.loss_scaler.get_scale() == scale and torch.equal(model.weight, before)
    wrapper.update_params(_loss(model))  # unscale_ works again: the skip reset its state
    assert not torch.equal(model.weight, before)


def test_fp16_scaler_skips_are_its_own_and_are_logged(tmp_path):
    # A huge initial scale overflows float16 gradients: the scaler skips and halves the scale,
    # the schedulers advance all the same (the reference's behaviour), and the log says so.
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(32, 4, shuffle=False),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(type="AmpOptimWrapper", dtype="float16", loss_scale=dict(init_scale=2.0**40),
                           optimizer=dict(type="SGD", lr=0.1), nonfinite=dict(action="skip")),
        param_scheduler=dict(type="LinearLR", by_epoch=False, start_factor=0.5, begin=0, end=8),
        default_hooks=dict(logger=dict(interval=4), checkpoint=None, progress=None),
    )
    try:
        runner.train()
    except Exception as error:
        if "GradScaler" in str(error) or "float16" in str(error):
            pytest.skip(f"no float16 loss scaler on CPU here: {error}")
        raise
    wrapper = runner.optim_wrapper
    assert wrapper.skipped_steps > 0 and wrapper.nonfinite.skipped == 0
    assert wrapper.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # 8 scheduler steps
    log = next(tmp_path.glob("*/*.log")).read_text()
    lines = [line for line in log.splitlines() if "loss scaler: skipped" in line]
    assert lines and f"({wrapper.skipped_steps} in all)" in lines[-1]
    assert sum(int(line.split("skipped ")[1].split(" ")[0]) for line in lines) == wrapper.skipped_steps


def test_each_wrapper_of_a_dict_has_its_own_guard():
    from minirunner.optim.nonfinite import guards_of, skip_guards
    from minirunner.optim.wrappers import OptimWrapperDict

    skipping = OptimWrapper(torch.optim.SGD(_model().parameters(), lr=0.1), nonfinite="skip")
    raising = OptimWrapper(torch.optim.SGD(_model().parameters(), lr=0.1))
    wrappers = OptimWrapperDict(gen=skipping, disc=raising)
    assert guards_of(wrappers) == [skipping.nonfinite, raising.nonfinite]
    assert skip_guards(wrappers) == [skipping.nonfinite]
    assert guards_of(dict(optimizer=dict(type="SGD"))) == []  # a config, not built yet
