"""OptimWrapper: accumulation, clipping, no_sync, hyper-parameters, state and bad input."""

from __future__ import annotations

import contextlib
import copy
import logging

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from minirunner.logging import get_current_logger
from minirunner.optim.wrappers import OptimWrapper
from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError


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
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def _batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(5, 3, generator=generator), torch.randn(5, 2, generator=generator))
            for _ in range(n)]


def _run_wrapper(wrapper: OptimWrapper, model: nn.Module, batches) -> tuple[list, list]:
    """Train with update_params; return the loss factor and whether it stepped, per iteration."""
    steps: list[int] = []
    handle = wrapper.optimizer.register_step_post_hook(
        lambda opt, args, kwargs: steps.append(wrapper.inner_count - 1))
    factors = []
    for x, y in batches:
        factors.append(float(wrapper.scale_loss(torch.tensor(1.0, dtype=torch.float64))))
        with wrapper.optim_context(model):
            loss = F.mse_loss(model(x), y)
        wrapper.update_params(loss)
    handle.remove()
    return factors, steps


# ---------------------------------------------------------------------- accumulation
@pytest.mark.parametrize(
    "k, max_iters, factors, step_iters",
    [
        # k=4 over 10: two full windows, then a window of 10 % 4 = 2 iterations.
        (4, 10, [1 / 4] * 8 + [1 / 2] * 2, [3, 7, 9]),
        # k=3 over 10: three full windows, then one iteration alone.
        (3, 10, [1 / 3] * 9 + [1.0], [2, 5, 8, 9]),
        # k=1: every iteration steps with the loss as it is.
        (1, 4, [1.0] * 4, [0, 1, 2, 3]),
    ],
)
def test_accumulation_factors_steps_and_weights(k, max_iters, factors, step_iters):
    model = _model()
    reference = copy.deepcopy(model)
    batches = _batches(max_iters)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                           accumulative_counts=k)
    wrapper.initialize_count_status(model, 0, max_iters)
    got_factors, got_steps = _run_wrapper(wrapper, model, batches)
    assert got_factors == pytest.approx(factors, abs=0)
    assert got_steps == step_iters
    assert wrapper.inner_count == max_iters

    # The same training written out by hand: divide by the window's length, step at its end.
    window_lengths = [round(1 / f) for f in factors]
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for i, (x, y) in enumerate(batches):
        loss = F.mse_loss(reference(x), y)
        if window_lengths[i] != 1:
            loss = loss / window_lengths[i]
        loss.backward()
        if i in step_iters:
            optimizer.step()
            optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)


def test_without_initialize_every_window_is_full():
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=3)
    factors, steps = _run_wrapper(wrapper, model, _batches(10))
    assert factors == pytest.approx([1 / 3] * 10, abs=0)
    assert steps == [2, 5, 8]  # the 10th iteration's gradient waits for a step that never comes
    assert wrapper.max_counts == -1


def test_resumed_count_status_and_its_warnings(log_lines):
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=4)
    wrapper.initialize_count_status(model, 5, 10)
    assert wrapper.inner_count == 5
    assert any("inside an accumulation window" in line for line in log_lines)
    assert any("BatchNorm" in line for line in log_lines)
    # Resumed at 5 of 10 with k=4: iterations 5..7 belong to a full window, 8..9 to the short.
    factors = []
    for _ in range(5):
        factors.append(float(wrapper.scale_loss(torch.tensor(1.0, dtype=torch.float64))))
        wrapper.backward(model(torch.randn(3, 3)).sum())
    assert factors == [1 / 4] * 3 + [1 / 2] * 2


def test_no_warnings_for_a_clean_start(log_lines):
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2)
    wrapper.initialize_count_status(model, 4, 10)
    assert log_lines == []


class _NoSyncModel(nn.Module):
    """Records whether each forward ran inside no_sync, like DDP's flag."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.in_no_sync = False
        self.forwards_in_no_sync: list[bool] = []

    @contextlib.contextmanager
    def no_sync(self):
        self.in_no_sync = True
        try:
            yield
        finally:
            self.in_no_sync = False

    def forward(self, x):
        self.forwards_in_no_sync.append(self.in_no_sync)
        return self.linear(x)


def test_optim_context_enters_no_sync_only_on_iterations_that_do_not_step():
    model = _NoSyncModel()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=3)
    wrapper.initialize_count_status(model, 0, 7)
    backward_in_no_sync = []
    for _ in range(7):
        with wrapper.optim_context(model):
            loss = model(torch.ones(1, 2)).sum()
        backward_in_no_sync.append(model.in_no_sync)
        wrapper.update_params(loss)
    # Steps after iterations 2, 5 and 6 (the last, short window): those forwards sync.
    assert model.forwards_in_no_sync == [True, True, False, True, True, False, False]
    assert backward_in_no_sync == [False] * 7


def test_optim_context_without_no_sync_or_accumulation_is_a_plain_block():
    model = _NoSyncModel()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        model(torch.ones(1, 2))
    plain = nn.Linear(2, 1)
    wrapper2 = OptimWrapper(torch.optim.SGD(plain.parameters(), lr=0.1), accumulative_counts=2)
    with wrapper2.optim_context(plain):  # no no_sync attribute: nothing to enter
        plain(torch.ones(1, 2))
    assert model.forwards_in_no_sync == [False]


# ---------------------------------------------------------------------- clipping
def _grads_norm(params, norm_type: float) -> torch.Tensor:
    grads = torch.cat([p.grad.flatten() for p in params if p.grad is not None])
    return torch.linalg.vector_norm(grads, norm_type)


@pytest.mark.parametrize("norm_type", [2, 1, float("inf")])
def test_clip_by_norm_matches_clip_grad_norm_and_records_the_pre_clip_norm(norm_type):
    model = _model()
    reference = copy.deepcopy(model)
    batches = _batches(4)
    cfg = dict(max_norm=0.05, norm_type=norm_type)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5), clip_grad=cfg)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    assert wrapper.grad_norm is None
    for x, y in batches:
        wrapper.update_params(F.mse_loss(model(x), y))

        F.mse_loss(reference(x), y).backward()
        expected_norm = _grads_norm(reference.parameters(), norm_type)
        assert expected_norm > 0.05  # clipping really acts
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.05, norm_type=norm_type)
        optimizer.step()
        optimizer.zero_grad()

        assert isinstance(wrapper.grad_norm, torch.Tensor)
        assert wrapper.grad_norm.dim() == 0 and not wrapper.grad_norm.requires_grad
        torch.testing.assert_close(wrapper.grad_norm, expected_norm)
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)
    assert cfg == dict(max_norm=0.05, norm_type=norm_type)


@pytest.mark.parametrize("cfg", [dict(clip_value=0.01), dict(type="value", clip_value=0.01)])
def test_clip_by_value_matches_clip_grad_value_(cfg):
    original = dict(cfg)
    model = _model()
    reference = copy.deepcopy(model)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.5), clip_grad=cfg)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for x, y in _batches(3):
        wrapper.update_params(F.mse_loss(model(x), y))
        F.mse_loss(reference(x), y).backward()
        assert max(p.grad.abs().max() for p in reference.parameters()) > 0.01
        torch.nn.utils.clip_grad_value_(reference.parameters(), 0.01)
        optimizer.step()
        optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(ours, theirs)
    assert wrapper.clipper.kind == "value"
    assert wrapper.grad_norm is None  # clipping by value computes no norm
    assert cfg == original


def test_grad_norm_is_set_only_on_iterations_that_step():
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=2,
                           clip_grad=dict(max_norm=1e6))
    batches = _batches(2)
    x, y = batches[0]
    wrapper.update_params(F.mse_loss(model(x), y))
    assert wrapper.grad_norm is None
    x2, y2 = batches[1]
    expected_grad = copy.deepcopy(model)
    (F.mse_loss(expected_grad(x), y) / 2).backward()
    (F.mse_loss(expected_grad(x2), y2) / 2).backward()
    expected = _grads_norm(expected_grad.parameters(), 2)
    wrapper.update_params(F.mse_loss(model(x2), y2))
    torch.testing.assert_close(wrapper.grad_norm, expected)


def test_clipping_skips_parameters_without_grad():
    model = nn.ModuleDict(dict(used=nn.Linear(2, 1), unused=nn.Linear(2, 1)))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), clip_grad=dict(max_norm=1))
    wrapper.update_params(model["used"](torch.ones(1, 2)).sum() * 10)
    # d(10 * (w.x + b))/dw = 10 * x = [10, 10], d/db = 10: norm sqrt(300)
    torch.testing.assert_close(wrapper.grad_norm, torch.tensor(300.0).sqrt())


@contextlib.contextmanager
def no_host_reads():
    """Make every way of reading a tensor's value on the host raise."""

    def host_sync(*args, **kwargs):
        raise AssertionError("a tensor value was read on the host")

    names = ("item", "tolist", "__float__", "__int__", "__bool__")
    saved = {name: getattr(torch.Tensor, name) for name in names}
    for name in names:
        setattr(torch.Tensor, name, host_sync)
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def test_update_params_does_no_host_sync():
    """Clipping by norm and accumulation read no tensor value on the host."""
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                           accumulative_counts=2, clip_grad=dict(max_norm=0.1))
    wrapper.initialize_count_status(model, 0, 3)
    for x, y in _batches(3):
        with wrapper.optim_context(model):
            loss = F.mse_loss(model(x), y)
        with no_host_reads():
            wrapper.update_params(loss)
    assert wrapper.grad_norm is not None
    with pytest.raises(AssertionError, match="read on the host"), no_host_reads():
        float(wrapper.grad_norm)  # the guard itself works


# ---------------------------------------------------------------------- hyper-parameters
def test_get_lr_and_momentum_with_one_group():
    wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.2, momentum=0.7))
    assert wrapper.get_lr() == {"lr": [0.2]}
    assert wrapper.get_momentum() == {"momentum": [0.7]}
    assert wrapper.base_param_settings is None
    assert wrapper.param_groups is wrapper.optimizer.param_groups
    assert wrapper.defaults is wrapper.optimizer.defaults


@pytest.mark.parametrize(
    "optimizer_cls, kwargs, momentum",
    [
        (torch.optim.Adam, dict(betas=(0.85, 0.99)), 0.85),
        (torch.optim.AdamW, dict(), 0.9),
        (torch.optim.RMSprop, dict(momentum=0.3), 0.3),
        (torch.optim.Adagrad, dict(), 0),
    ],
)
def test_get_momentum_uses_momentum_then_betas_then_zero(optimizer_cls, kwargs, momentum):
    wrapper = OptimWrapper(optimizer_cls(nn.Linear(1, 1).parameters(), lr=0.1, **kwargs))
    assert wrapper.get_momentum() == {"momentum": [momentum]}


def test_several_groups_add_base_lr_that_follows_param_groups():
    model = nn.ModuleDict(dict(backbone=nn.Linear(1, 1), head=nn.Linear(1, 1)))
    optimizer = torch.optim.SGD(
        [{"params": model.backbone.parameters()},
         {"params": model.head.parameters(), "lr": 1e-3}],
        lr=0.01, momentum=0.9)
    wrapper = OptimWrapper(optimizer)
    assert wrapper.get_lr() == {"lr": [0.01, 1e-3], "base_lr": [0.01]}
    assert wrapper.get_momentum() == {"momentum": [0.9, 0.9]}
    groups = wrapper.param_groups
    assert len(groups) == 3 and groups[:2] == optimizer.param_groups
    # A scheduler that walks param_groups updates the base entry with the others.
    for group in wrapper.param_groups:
        group["lr"] *= 0.5
    assert wrapper.get_lr() == {"lr": [0.005, 5e-4], "base_lr": [0.005]}

    state = wrapper.state_dict()
    assert state["base_param_settings"]["lr"] == 0.005
    other_model = copy.deepcopy(model)
    other = OptimWrapper(torch.optim.SGD(
        [{"params": other_model.backbone.parameters()},
         {"params": other_model.head.parameters(), "lr": 1e-3}], lr=0.01, momentum=0.9))
    base = other.base_param_settings
    other.load_state_dict(state)
    assert other.base_param_settings is base  # updated in place
    assert other.get_lr() == {"lr": [0.005, 5e-4], "base_lr": [0.005]}
    assert "base_param_settings" in state  # the caller's dict is not consumed


# ---------------------------------------------------------------------- state
def test_state_dict_round_trip_restores_momentum():
    model = _model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for x, y in _batches(2):
        wrapper.update_params(F.mse_loss(model(x), y))
    state = wrapper.state_dict()
    fresh_model = copy.deepcopy(model)
    fresh = OptimWrapper(torch.optim.SGD(fresh_model.parameters(), lr=0.5, momentum=0.9))
    # A saved checkpoint holds copies; the live state dict shares the momentum buffers.
    fresh.load_state_dict(copy.deepcopy(state))
    assert fresh.get_lr() == {"lr": [0.1]}
    # Continue both; identical buffers give identical weights.
    for x, y in _batches(2, seed=5):
        wrapper.update_params(F.mse_loss(model(x), y))
        fresh.update_params(F.mse_loss(fresh_model(x), y))
    for ours, theirs in zip(model.parameters(), fresh_model.parameters()):
        assert torch.equal(ours, theirs)


def test_repr_names_the_settings_and_the_optimizer():
    wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1),
                           accumulative_counts=2, clip_grad=dict(max_norm=3))
    text = repr(wrapper)
    assert text.startswith("OptimWrapper(accumulative_counts=2, clip_grad=dict(type='norm', "
                           "max_norm=3)")
    assert "SGD" in text and "lr: 0.1" in text


def test_registered_and_buildable_from_a_config():
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    wrapper = OPTIM_WRAPPERS.build(dict(type="OptimWrapper", optimizer=optimizer,
                                        accumulative_counts=2, clip_grad=dict(max_norm=1)))
    assert isinstance(wrapper, OptimWrapper) and wrapper.accumulative_counts == 2


# ---------------------------------------------------------------------- bad input
def _sgd():
    return torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)


@pytest.mark.parametrize("counts", [0, -2, 1.5, "2", True])
def test_bad_accumulative_counts(counts):
    with pytest.raises(ConfigError, match=r"accumulative_counts: must be an integer >= 1"):
        OptimWrapper(_sgd(), accumulative_counts=counts)


@pytest.mark.parametrize(
    "clip_grad, pattern",
    [
        (1.0, r"^clip_grad: expected a dict such as dict\(max_norm=35"),
        ("norm", r"^clip_grad: expected a dict"),
        (dict(type="nrom", max_norm=1), r"^clip_grad.type: unknown clipping type 'nrom'. "
                                        r"Did you mean 'norm'\?"),
        (dict(type=3, max_norm=1), r"^clip_grad.type: unknown clipping type 3"),
        (dict(max_nrm=1), r"^clip_grad.max_nrm: unknown key for clipping by norm. "
                          r"Did you mean 'max_norm'\?"),
        (dict(type="value", clip_vlaue=1), r"^clip_grad.clip_vlaue: .*Did you mean 'clip_value'"),
        (dict(norm_type=2), r"^clip_grad: clipping by norm needs 'max_norm'"),
        (dict(), r"^clip_grad: clipping by norm needs 'max_norm'"),
        (dict(type="value"), r"^clip_grad: clipping by value needs 'clip_value'"),
        (dict(max_norm=-1), r"^clip_grad.max_norm: must be a positive number, got -1"),
        (dict(max_norm="1"), r"^clip_grad.max_norm: must be a positive number"),
        (dict(clip_value=0), r"^clip_grad.clip_value: must be a positive number"),
    ],
)
def test_bad_clip_grad(clip_grad, pattern):
    with pytest.raises(ConfigError, match=pattern):
        OptimWrapper(_sgd(), clip_grad=clip_grad)


def test_bad_clip_grad_through_the_registry_names_the_key():
    with pytest.raises(ConfigError, match=r"clip_grad.max_nrm: .*'max_norm'"):
        OPTIM_WRAPPERS.build(dict(type="OptimWrapper", optimizer=_sgd(),
                                  clip_grad=dict(max_nrm=1)))


def test_optimizer_must_be_an_optimizer():
    with pytest.raises(ConfigError, match=r"^optimizer: expected a torch.optim.Optimizer "
                                          r"instance, got dict.*build_optim_wrapper"):
        OptimWrapper(dict(type="SGD", lr=0.1))


def test_load_state_dict_with_other_groups_explains_the_mismatch():
    model = nn.ModuleDict(dict(a=nn.Linear(1, 1), b=nn.Linear(1, 1)))
    two_groups = OptimWrapper(torch.optim.SGD(
        [{"params": model.a.parameters()}, {"params": model.b.parameters()}], lr=0.1))
    one_group = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ConfigError, match=r"^state_dict: the saved optimizer state has 2 param "
                                          r"group\(s\) of sizes \[2, 2\], but this optimizer "
                                          r"has 1 of sizes \[4\].*same config"):
        one_group.load_state_dict(two_groups.state_dict())


def test_load_state_dict_of_a_whole_checkpoint_says_which_key_to_pass():
    wrapper = OptimWrapper(_sgd())
    with pytest.raises(ConfigError, match=r"^state_dict: .*checkpoint\['optimizer'\]"):
        wrapper.load_state_dict({"state_dict": {}, "optimizer": wrapper.state_dict()})


def test_update_params_rejects_a_loss_without_grad():
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with torch.no_grad():
        loss = model(torch.ones(1, 2)).sum()
    with pytest.raises(ValueError, match=r"update_params\(loss\): the loss does not require "
                                         r"grad .*outside torch.no_grad\(\)"):
        wrapper.update_params(loss)
    with pytest.raises(ValueError, match=r"update_params\(loss\): .*got float 1.0, not a tensor"):
        wrapper.update_params(1.0)
    assert wrapper.inner_count == 0


def test_initialize_count_status_rejects_bad_counts():
    wrapper = OptimWrapper(_sgd())
    with pytest.raises(ValueError, match=r"init_counts \(5\) is larger than max_counts \(3\)"):
        wrapper.initialize_count_status(nn.Linear(1, 1), 5, 3)
    with pytest.raises(ValueError, match=r"max_counts must be a non-negative int, got 2.0"):
        wrapper.initialize_count_status(nn.Linear(1, 1), 0, 2.0)


def test_step_and_zero_kwargs_reach_the_optimizer():
    model = nn.Linear(2, 1)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    closure_calls = []

    def closure():
        closure_calls.append(1)
        return None

    wrapper.update_params(model(torch.ones(1, 2)).sum(), step_kwargs=dict(closure=closure),
                          zero_kwargs=dict(set_to_none=False))
    assert closure_calls == [1]
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in model.parameters())


@pytest.mark.parametrize("method", ["scale_loss", "backward", "should_update", "step", "zero_grad"])
def test_update_params_calls_each_step_a_subclass_overrides(method):
    # update_params runs the base class's steps inline; an override of any one of them
    # must still be called, and the others must still happen.
    calls = []

    def recording(self, *args, **kwargs):
        calls.append(method)
        return getattr(OptimWrapper, method)(self, *args, **kwargs)

    Recording = type("Recording", (OptimWrapper,), {method: recording})
    model = nn.Linear(2, 1)
    wrapper = Recording(torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.weight.detach().clone()
    wrapper.update_params(model(torch.ones(3, 2)).sum())
    assert calls == [method]
    assert not torch.equal(model.weight, before) and model.weight.grad is None  # stepped, zeroed
    assert wrapper.inner_count == 1
