"""AmpOptimWrapper: autocast on CPU (bfloat16) and CUDA, the float16 loss scaler, bad input."""

from __future__ import annotations

import contextlib
import copy
import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from minirunner.logging import get_current_logger
from minirunner.optim.wrappers import AmpOptimWrapper, OptimWrapper
from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError


def _cpu_grad_scaler_supported() -> bool:
    try:
        torch.amp.GradScaler("cpu")
    except Exception:
        return False
    return True


needs_cpu_scaler = pytest.mark.skipif(
    not _cpu_grad_scaler_supported(), reason="this torch has no CPU GradScaler")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def log_lines():
    handler = _Records()
    logger = get_current_logger()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))


def _sgd(model: nn.Module, **kwargs) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.05, **kwargs)


# ---------------------------------------------------------------------- bfloat16 on CPU
def test_cpu_default_is_bfloat16_without_a_scaler():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model))
    assert wrapper.cast_dtype == torch.bfloat16
    assert wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        inside = model(torch.randn(4, 3))
    outside = model(torch.randn(4, 3))
    assert inside.dtype == torch.bfloat16
    assert outside.dtype == torch.float32
    assert "loss_scaler" not in wrapper.state_dict()


def test_bfloat16_training_converges_on_a_small_regression():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3
    model = nn.Linear(3, 1)
    wrapper = AmpOptimWrapper(optimizer=torch.optim.Adam(model.parameters(), lr=0.05))
    losses = []
    for _ in range(150):
        with wrapper.optim_context(model):
            pred = model(x)
        assert pred.dtype == torch.bfloat16
        loss = F.mse_loss(pred.float(), y)
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.02 * losses[0]
    assert wrapper.skipped_steps == 0 and not wrapper.last_step_skipped


def test_bfloat16_state_dict_round_trip():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model, momentum=0.9))
    for seed in range(3):
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(seed))
        with wrapper.optim_context(model):
            out = model(x)
        wrapper.update_params(out.float().pow(2).mean())
    state = copy.deepcopy(wrapper.state_dict())
    assert set(state) == {"state", "param_groups"}
    other_model = copy.deepcopy(model)
    other = AmpOptimWrapper(optimizer=_sgd(other_model, momentum=0.9))
    other.load_state_dict(state)
    for param, other_param in zip(model.parameters(), other_model.parameters()):
        assert torch.equal(wrapper.optimizer.state[param]["momentum_buffer"],
                           other.optimizer.state[other_param]["momentum_buffer"])


@pytest.mark.parametrize("dtype", ["float32", torch.float32, "float64"])
def test_full_precision_dtypes_run_without_autocast_or_scaler(dtype):
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype=dtype)
    assert wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 3)).dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")


def test_optim_context_keeps_no_sync_of_the_base_wrapper():
    class WithNoSync(nn.Linear):
        entered = 0

        def no_sync(self):
            WithNoSync.entered += 1
            return contextlib.nullcontext()

    model = WithNoSync(2, 1)
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), accumulative_counts=2)
    with wrapper.optim_context(model):  # the first of two iterations does not step
        assert model(torch.ones(1, 2)).dtype == torch.bfloat16
    assert WithNoSync.entered == 1


def test_loss_scale_is_ignored_with_a_warning_for_bfloat16(log_lines):
    wrapper = AmpOptimWrapper(optimizer=_sgd(_model()), loss_scale=512.0)
    assert wrapper.loss_scaler is None
    assert any("loss_scale=512.0 is ignored" in line for line in log_lines)


def test_a_float16_checkpoint_loads_into_bfloat16_with_a_warning(log_lines):
    state = OptimWrapper(_sgd(_model())).state_dict()
    state["loss_scaler"] = {"scale": 1024.0}
    wrapper = AmpOptimWrapper(optimizer=_sgd(_model()))
    wrapper.load_state_dict(state)
    assert "loss_scaler" in state
    assert any("uses no scaler; it is ignored" in line for line in log_lines)


def test_registered():
    wrapper = OPTIM_WRAPPERS.build(dict(type="AmpOptimWrapper", optimizer=_sgd(_model()),
                                        dtype="bfloat16", accumulative_counts=2))
    assert isinstance(wrapper, AmpOptimWrapper) and wrapper.accumulative_counts == 2
    assert "dtype='bfloat16'" in repr(wrapper)


# ---------------------------------------------------------------------- float16 scaler (CPU)
@needs_cpu_scaler
def test_float16_on_cpu_uses_autocast_and_a_scaler():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype="float16")
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 3)).dtype == torch.float16
    assert wrapper.state_dict()["loss_scaler"] == {
        "scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
        "growth_interval": 2000, "_growth_tracker": 0}


@needs_cpu_scaler
def test_scaler_state_round_trip_on_cpu():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model, momentum=0.9), dtype="float16",
                              loss_scale=dict(init_scale=256.0, growth_interval=1))
    for _ in range(2):
        wrapper.update_params(model(torch.randn(4, 3)).pow(2).mean())
    state = copy.deepcopy(wrapper.state_dict())
    # growth_interval=1: the scale doubles after each finite step, 256 -> 512 -> 1024.
    assert state["loss_scaler"]["scale"] == 1024.0
    assert state["loss_scaler"]["growth_interval"] == 1

    other_model = copy.deepcopy(model)
    other = AmpOptimWrapper(optimizer=_sgd(other_model, momentum=0.9), dtype="float16")
    assert other.state_dict()["loss_scaler"]["scale"] == 65536.0
    other.load_state_dict(state)
    assert other.state_dict()["loss_scaler"] == state["loss_scaler"]
    assert other.loss_scaler.get_scale() == 1024.0
    assert "loss_scaler" in state  # not consumed


@needs_cpu_scaler
def test_step_with_inf_gradients_is_skipped_and_counted():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype="float16")
    before = copy.deepcopy(model.state_dict())
    wrapper.update_params(model(torch.randn(4, 3)).sum() * float("inf"))
    assert wrapper.last_step_skipped and wrapper.skipped_steps == 1
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])
    assert wrapper.loss_scaler.get_scale() == 65536.0 * 0.5  # backoff_factor
    assert all(p.grad is None for p in model.parameters())  # zeroed all the same

    wrapper.update_params(model(torch.randn(4, 3)).pow(2).mean())
    assert not wrapper.last_step_skipped and wrapper.skipped_steps == 1
    assert not torch.equal(model[0].weight, before["0.weight"])


@needs_cpu_scaler
def test_fixed_loss_scale_stays_fixed_and_scaling_is_exact():
    model = _model()
    reference = copy.deepcopy(model)
    wrapper = AmpOptimWrapper(optimizer=_sgd(model, momentum=0.9), dtype="float16",
                              loss_scale=512.0)
    optimizer = _sgd(reference, momentum=0.9)
    generator = torch.Generator().manual_seed(3)
    for _ in range(3):
        # Outside optim_context: no autocast, so only the scaling differs from a plain loop,
        # and scaling by a power of two then unscaling is exact.
        x = torch.randn(4, 3, generator=generator)
        wrapper.update_params(model(x).pow(2).mean())
        reference(x).pow(2).mean().backward()
        optimizer.step()
        optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)
    wrapper.update_params(model(torch.randn(4, 3)).sum() * float("inf"))
    assert wrapper.last_step_skipped
    assert wrapper.loss_scaler.get_scale() == 512.0


@needs_cpu_scaler
def test_gradients_are_unscaled_before_clipping():
    model = _model()
    reference = copy.deepcopy(model)
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype="float16",
                              clip_grad=dict(max_norm=0.01))
    optimizer = _sgd(reference)
    generator = torch.Generator().manual_seed(4)
    for _ in range(3):
        x = torch.randn(4, 3, generator=generator)
        wrapper.update_params(model(x).pow(2).mean())
        reference(x).pow(2).mean().backward()
        norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.01)
        assert norm > 0.01
        optimizer.step()
        optimizer.zero_grad()
        # The recorded norm is the true (unscaled) pre-clip norm, not 65536 times it.
        torch.testing.assert_close(wrapper.grad_norm, norm)
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)


@needs_cpu_scaler
def test_float16_with_accumulation_steps_once_per_window():
    model = _model()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype="float16", accumulative_counts=2,
                              loss_scale=dict(init_scale=8.0, growth_interval=1))
    wrapper.initialize_count_status(model, 0, 5)
    for _ in range(5):
        with wrapper.optim_context(model):
            out = model(torch.randn(4, 3))
        wrapper.update_params(out.float().pow(2).mean())
    # Steps after iterations 2, 4 and 5: three finite steps, each doubling the scale.
    assert wrapper.loss_scaler.get_scale() == 8.0 * 2 ** 3


@needs_cpu_scaler
def test_missing_scaler_state_is_reported(log_lines):
    wrapper = AmpOptimWrapper(optimizer=_sgd(_model()), dtype="float16")
    wrapper.load_state_dict(OptimWrapper(_sgd(_model())).state_dict())
    assert any("has no loss scaler state" in line for line in log_lines)


# ---------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_default_is_float16_with_a_dynamic_scaler():
    model = _model().cuda()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), clip_grad=dict(max_norm=1.0))
    assert wrapper.cast_dtype == torch.float16
    assert wrapper.loss_scaler is not None
    for _ in range(3):
        with wrapper.optim_context(model):
            out = model(torch.randn(4, 3, device="cuda"))
        assert out.dtype == torch.float16
        wrapper.update_params(out.float().pow(2).mean())
    assert wrapper.grad_norm.device.type == "cuda"
    assert wrapper.state_dict()["loss_scaler"]["scale"] == 65536.0
    wrapper.update_params(model(torch.randn(4, 3, device="cuda")).sum() * float("inf"))
    assert wrapper.last_step_skipped and wrapper.skipped_steps == 1


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bfloat16_has_no_scaler():
    model = _model().cuda()
    wrapper = AmpOptimWrapper(optimizer=_sgd(model), dtype=torch.bfloat16)
    assert wrapper.loss_scaler is None
    with wrapper.optim_context(model):
        assert model(torch.randn(4, 3, device="cuda")).dtype == torch.bfloat16


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("dtype", ["fp16", "float8", torch.int8, 16])
def test_bad_dtype_lists_the_options(dtype):
    with pytest.raises(ConfigError, match=r"^dtype: unsupported dtype .*Use one of 'bfloat16', "
                                          r"'float16', 'float32', 'float64'"):
        AmpOptimWrapper(optimizer=_sgd(_model()), dtype=dtype)


def test_misspelled_dtype_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"Did you mean 'bfloat16'"):
        AmpOptimWrapper(optimizer=_sgd(_model()), dtype="bfloat61")


@pytest.mark.parametrize("loss_scale", ["static", -1.0, 0, True, [512.0]])
def test_bad_loss_scale(loss_scale):
    with pytest.raises(ConfigError, match=r"^loss_scale: expected 'dynamic', a positive number"):
        AmpOptimWrapper(optimizer=_sgd(_model()), dtype="bfloat16", loss_scale=loss_scale)


@needs_cpu_scaler
def test_unknown_grad_scaler_argument_gets_a_suggestion():
    with pytest.raises(ConfigError, match=r"^loss_scale.init_scal: unknown GradScaler "
                                          r"argument. Did you mean 'init_scale'\?"):
        AmpOptimWrapper(optimizer=_sgd(_model()), dtype="float16",
                        loss_scale=dict(init_scal=2.0))


def test_wrapper_arguments_are_checked_as_in_optim_wrapper():
    with pytest.raises(ConfigError, match=r"^clip_grad.max_nrm: .*'max_norm'"):
        AmpOptimWrapper(optimizer=_sgd(_model()), clip_grad=dict(max_nrm=1))
