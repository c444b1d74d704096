"""EMAHook: averages against hand-computed closed forms, swaps, checkpoints, bad input."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from minirunner.hooks.ema_hook import EMAHook
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError


class FakeLoop:
    stop_training = False


class FakeRunner:
    """Only the attributes the hooks may use."""

    def __init__(self, model: nn.Module, max_iters: int = 100, max_epochs: int = 10) -> None:
        self.model = model
        self.iter = 0
        self.epoch = 0
        self.max_iters = max_iters
        self.max_epochs = max_epochs
        self.train_loop = FakeLoop()
        self.logger = logging.getLogger("minirunner")


def param_values(k: int) -> tuple[list[list[float]], list[float]]:
    """The weights of a Linear(2, 2) after iteration k: simple, distinct, known numbers."""
    weight = [[1.0 + k, -2.0 * k], [0.5 * k * k, 3.0 - k]]
    bias = [10.0 - 3 * k, 0.25 * k]
    return weight, bias


def set_params(model: nn.Linear, k: int) -> None:
    weight, bias = param_values(k)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(weight))
        model.bias.copy_(torch.tensor(bias))


def flat(values: tuple[list[list[float]], list[float]]) -> list[float]:
    weight, bias = values
    return [x for row in weight for x in row] + list(bias)


def ema_flat(hook: EMAHook) -> list[float]:
    state = hook.ema_state_dict()
    return state["module.weight"].flatten().tolist() + state["module.bias"].tolist()


def train_iters(hook: EMAHook, runner: FakeRunner, model: nn.Linear, ks: range) -> None:
    for k in ks:
        set_params(model, k)  # what the optimizer step would have left
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)


def expected_ema(ks: list[int], weights: list[float]) -> list[float]:
    """ema = p_{ks[0]}; then ema = (1 - w) * ema + w * p_k, with w the weight of each update."""
    ema = flat(param_values(ks[0]))
    for k, w in zip(ks[1:], weights):
        p = flat(param_values(k))
        ema = [(1 - w) * e + w * x for e, x in zip(ema, p)]
    return ema


def make(**kwargs) -> tuple[EMAHook, FakeRunner, nn.Linear]:
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    hook = EMAHook(**kwargs)
    hook.before_run(runner)
    hook.before_train(runner)
    return hook, runner, model


def test_momentum_is_the_weight_of_the_new_value():
    m = 0.25
    hook, runner, model = make(momentum=m)
    train_iters(hook, runner, model, range(6))
    # The first update copies p_0; the next five average with weight m.
    assert ema_flat(hook) == pytest.approx(expected_ema(list(range(6)), [m] * 5), abs=1e-5)
    assert hook.steps == 6


def test_default_momentum_matches_closed_form():
    hook, runner, model = make()
    # As in the reference, the momentum belongs to the averaged model, not to the hook.
    assert hook.ema_model.momentum == 0.0002
    train_iters(hook, runner, model, range(4))
    assert ema_flat(hook) == pytest.approx(expected_ema([0, 1, 2, 3], [0.0002] * 3), abs=1e-5)


def test_averages_are_updated_in_place_without_autograd():
    hook, runner, model = make(momentum=0.5)
    state = hook.ema_state_dict()
    ptrs = {k: v.data_ptr() for k, v in state.items() if k != "steps"}
    train_iters(hook, runner, model, range(3))
    after = hook.ema_state_dict()
    assert {k: v.data_ptr() for k, v in after.items() if k != "steps"} == ptrs
    assert not any(v.requires_grad for v in after.values())
    assert all(v.grad_fn is None for v in after.values())


def test_begin_iter_follows_weights_until_begin():
    m = 0.5
    hook, runner, model = make(momentum=m, begin_iter=3)
    train_iters(hook, runner, model, range(2))
    assert ema_flat(hook) == flat(param_values(1))  # iterations 1 and 2: copies only
    assert hook.steps == 0
    train_iters(hook, runner, model, range(2, 3))
    assert ema_flat(hook) == flat(param_values(2))  # 3rd iteration: the first update copies
    train_iters(hook, runner, model, range(3, 5))
    assert ema_flat(hook) == pytest.approx(expected_ema([2, 3, 4], [m, m]), abs=1e-6)


def test_begin_epoch_follows_weights_through_earlier_epochs():
    m = 0.5
    hook, runner, model = make(momentum=m, begin_epoch=2)
    # Epoch 0 (the first): iterations 0..2 only copy.
    train_iters(hook, runner, model, range(3))
    assert ema_flat(hook) == flat(param_values(2))
    assert hook.steps == 0
    runner.epoch = 1  # the second epoch: averaging has begun
    train_iters(hook, runner, model, range(3, 6))
    assert ema_flat(hook) == pytest.approx(expected_ema([3, 4, 5], [m, m]), abs=1e-6)


def test_interval_averages_every_nth_update():
    m = 0.5
    hook, runner, model = make(momentum=m, interval=2)
    train_iters(hook, runner, model, range(5))
    # steps 0: copy p0; 1: skip; 2: average p2; 3: skip; 4: average p4.
    assert ema_flat(hook) == pytest.approx(expected_ema([0, 2, 4], [m, m]), abs=1e-6)


def test_momentum_annealing_weight():
    m, gamma = 0.01, 2
    hook, runner, model = make(ema_type="MomentumAnnealingEMA", momentum=m, gamma=gamma)
    train_iters(hook, runner, model, range(5))
    weights = [max(m, gamma / (gamma + steps)) for steps in (1, 2, 3, 4)]  # 2/3, 1/2, 2/5, 1/3
    assert ema_flat(hook) == pytest.approx(expected_ema(list(range(5)), weights), abs=1e-5)


def test_stochastic_weight_average_is_the_mean():
    hook, runner, model = make(ema_type="StochasticWeightAverage")
    train_iters(hook, runner, model, range(4))
    ps = [flat(param_values(k)) for k in range(4)]
    mean = [sum(col) / 4 for col in zip(*ps)]
    assert ema_flat(hook) == pytest.approx(mean, abs=1e-5)


def test_swap_in_for_val_and_test_restores_training_weights_exactly():
    hook, runner, model = make(momentum=0.3)
    torch.manual_seed(1)
    for k in range(5):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    ema = {k[len("module."):]: v.clone() for k, v in hook.ema_state_dict().items() if k != "steps"}
    assert not torch.equal(raw["weight"], ema["weight"])
    for before, after in ((hook.before_val_epoch, hook.after_val_epoch), (hook.before_test_epoch, hook.after_test_epoch)):
        before(runner)
        for name, value in model.state_dict().items():
            assert torch.equal(value, ema[name])
        after(runner, metrics={})
        for name, value in model.state_dict().items():
            assert torch.equal(value, raw[name])  # bit-exact
        assert torch.equal(hook.ema_state_dict()["module.weight"], ema["weight"])


def test_buffers_copied_by_default():
    torch.manual_seed(0)
    model = nn.BatchNorm1d(3)
    runner = FakeRunner(model)
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    for k in range(3):
        with torch.no_grad():
            model.running_mean.fill_(float(k + 1))
            model.weight.fill_(float(2 * k))
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)
    state = hook.ema_state_dict()
    assert state["module.running_mean"].tolist() == [3.0, 3.0, 3.0]  # copied, not averaged
    # weight: copy 0, then 0.5*0 + 0.5*2 = 1, then 0.5*1 + 0.5*4 = 2.5
    assert state["module.weight"].tolist() == [2.5, 2.5, 2.5]
    # Buffers are not swapped: validation uses the model's own statistics.
    hook.before_val_epoch(runner)
    assert model.weight.tolist() == [2.5, 2.5, 2.5]
    assert model.running_mean.tolist() == [3.0, 3.0, 3.0]
    hook.after_val_epoch(runner)
    assert model.weight.tolist() == [4.0, 4.0, 4.0]


def test_update_buffers_averages_float_buffers_and_copies_integer_ones():
    model = nn.BatchNorm1d(2)
    runner = FakeRunner(model)
    hook = EMAHook(momentum=0.25, update_buffers=True)
    hook.before_run(runner)
    for k, value in enumerate([4.0, 8.0, 0.0]):
        with torch.no_grad():
            model.running_var.fill_(value)
            model.num_batches_tracked.fill_(10 * (k + 1))
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)
    state = hook.ema_state_dict()
    # copy 4; 0.75*4 + 0.25*8 = 5; 0.75*5 + 0.25*0 = 3.75
    assert state["module.running_var"].tolist() == [3.75, 3.75]
    assert int(state["module.num_batches_tracked"]) == 30
    hook.before_val_epoch(runner)
    assert model.running_var.tolist() == [3.75, 3.75]  # averaged buffers are swapped in
    hook.after_val_epoch(runner)
    assert model.running_var.tolist() == [0.0, 0.0]


def run_and_save(tmp_path, m=0.5):
    hook, runner, model = make(momentum=m)
    train_iters(hook, runner, model, range(4))
    checkpoint = {"state_dict": dict(model.state_dict()), "meta": {"iter": 4}}
    hook.before_save_checkpoint(runner, checkpoint)
    path = tmp_path / "iter_4.pth"
    torch.save(checkpoint, path)
    return hook, runner, model, checkpoint, path


def test_checkpoint_holds_ema_weights_in_state_dict(tmp_path):
    m = 0.5
    hook, runner, model, checkpoint, path = run_and_save(tmp_path, m)
    expected = expected_ema([0, 1, 2, 3], [m] * 3)
    raw = flat(param_values(3))
    # The model keeps training with its raw weights.
    assert model.weight.flatten().tolist() + model.bias.tolist() == raw
    loaded = torch.load(path, weights_only=True)
    sd, ema = loaded["state_dict"], loaded["ema_state_dict"]
    assert sd["weight"].flatten().tolist() + sd["bias"].tolist() == pytest.approx(expected, abs=1e-6)
    assert ema["module.weight"].flatten().tolist() + ema["module.bias"].tolist() == raw
    assert int(ema["steps"]) == 4
    assert set(ema) == {"steps", "module.weight", "module.bias"}


def test_resume_restores_raw_weights_and_averages(tmp_path):
    m = 0.5
    _, _, _, _, path = run_and_save(tmp_path, m)
    loaded = torch.load(path, weights_only=True)
    torch.manual_seed(123)
    model = nn.Linear(2, 2)  # fresh weights that must be replaced
    runner = FakeRunner(model)
    runner._resume = True
    hook = EMAHook(momentum=m)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, loaded)
    raw = flat(param_values(3))
    assert loaded["state_dict"]["weight"].flatten().tolist() + loaded["state_dict"]["bias"].tolist() == raw
    assert model.weight.flatten().tolist() + model.bias.tolist() == raw
    assert hook.steps == 4
    assert ema_flat(hook) == pytest.approx(expected_ema([0, 1, 2, 3], [m] * 3), abs=1e-6)
    # Training continues as if never interrupted.
    train_iters(hook, runner, model, range(4, 6))
    assert ema_flat(hook) == pytest.approx(expected_ema(list(range(6)), [m] * 5), abs=1e-6)


def test_runner_without_resume_flag_is_treated_as_resuming(tmp_path):
    _, _, _, _, path = run_and_save(tmp_path)
    loaded = torch.load(path, weights_only=True)
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, loaded)
    assert model.weight.flatten().tolist() + model.bias.tolist() == flat(param_values(3))


def test_load_from_without_resume_keeps_the_averaged_weights(tmp_path):
    m = 0.5
    _, _, _, _, path = run_and_save(tmp_path, m)
    loaded = torch.load(path, weights_only=True)
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    runner._resume = False
    hook = EMAHook(momentum=m)
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, loaded)
    expected = expected_ema([0, 1, 2, 3], [m] * 3)
    sd = loaded["state_dict"]
    assert sd["weight"].flatten().tolist() + sd["bias"].tolist() == pytest.approx(expected, abs=1e-6)
    assert ema_flat(hook) == pytest.approx(expected, abs=1e-6)  # the average starts from them
    assert hook.steps == 0


def test_strict_load_rejects_mismatched_checkpoint():
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    runner._resume = True
    checkpoint = {
        "state_dict": dict(model.state_dict()),
        "ema_state_dict": {"steps": torch.tensor(3), "module.weight": torch.zeros(2, 2), "module.extra": torch.zeros(1)},
    }
    hook = EMAHook(strict_load=True)
    hook.before_run(runner)
    with pytest.raises(RuntimeError, match="module.bias"):
        hook.after_load_checkpoint(runner, checkpoint)
    # Non-strict: loads what matches.
    checkpoint = {
        "state_dict": dict(model.state_dict()),
        "ema_state_dict": {"steps": torch.tensor(3), "module.weight": torch.zeros(2, 2), "module.extra": torch.zeros(1)},
    }
    hook = EMAHook()
    hook.before_run(runner)
    hook.after_load_checkpoint(runner, checkpoint)
    assert hook.ema_state_dict()["module.weight"].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert hook.steps == 3


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(2, 2, bias=False)
        self.head = nn.Linear(2, 2, bias=False)
        self.head.weight = self.embed.weight


def test_tied_weights_are_one_average_saved_under_every_name():
    model = Tied()
    runner = FakeRunner(model)
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    for k, value in enumerate([2.0, 4.0]):
        with torch.no_grad():
            model.embed.weight.fill_(value)
        runner.iter = k
        hook.after_train_iter(runner, batch_idx=k)
    checkpoint = {"state_dict": dict(model.state_dict())}
    hook.before_save_checkpoint(runner, checkpoint)
    assert checkpoint["state_dict"]["embed.weight"].tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert checkpoint["state_dict"]["head.weight"].tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_model_wrapper_is_unwrapped():
    from torch.nn.parallel import DistributedDataParallel

    inner = nn.Linear(2, 2)
    wrapper = DistributedDataParallel.__new__(DistributedDataParallel)  # no process group needed
    nn.Module.__init__(wrapper)
    wrapper.module = inner
    runner = FakeRunner(wrapper)
    hook = EMAHook(momentum=0.5)
    hook.before_run(runner)
    assert set(hook.ema_state_dict()) == {"steps", "module.weight", "module.bias"}


@pytest.mark.parametrize("momentum", [0, 1, -0.1, 1.5, True, "0.1"])
def test_bad_momentum(momentum):
    with pytest.raises(ConfigError, match="momentum") as info:
        EMAHook(momentum=momentum)
    assert info.value.key == "momentum"


@pytest.mark.parametrize("key", ["begin_iter", "begin_epoch"])
def test_negative_begin(key):
    with pytest.raises(ConfigError) as info:
        EMAHook(**{key: -1})
    assert info.value.key == key


def test_bad_combinations_and_names():
    with pytest.raises(ConfigError, match="set only one"):
        EMAHook(begin_iter=2, begin_epoch=1)
    with pytest.raises(ConfigError, match="ExponentialMovingAverage") as info:
        EMAHook(ema_type="ExponentialMovingAvg")
    assert info.value.key == "ema_type" and "Did you mean" in str(info.value)
    with pytest.raises(ConfigError) as info:
        EMAHook(gamma=10)
    assert info.value.key == "gamma"
    with pytest.raises(ConfigError) as info:
        EMAHook(interval=0)
    assert info.value.key == "interval"


def test_built_from_config_and_errors_name_the_key():
    hook = HOOKS.build(dict(type="EMAHook", momentum=0.001, begin_iter=10))
    assert isinstance(hook, EMAHook) and hook.begin_iter == 10
    assert hook.priority == "NORMAL"
    with pytest.raises(ConfigError, match="momentum"):
        HOOKS.build(dict(type="EMAHook", momentum=0.9999 + 1))


def test_large_momentum_warns_about_the_convention():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    try:
        EMAHook(momentum=0.9998)
    finally:
        logger.removeHandler(handler)
    assert any("0.0002" in r.getMessage() and r.levelno == logging.WARNING for r in records)


def test_begin_after_the_end_is_a_config_error():
    model = nn.Linear(2, 2)
    hook = EMAHook(begin_epoch=20)
    runner = FakeRunner(model, max_epochs=10)
    hook.before_run(runner)
    with pytest.raises(ConfigError) as info:
        hook.before_train(runner)
    assert info.value.key == "begin_epoch"


def test_resume_from_checkpoint_without_averages_warns_and_starts_from_its_weights():
    model = nn.Linear(2, 2)
    runner = FakeRunner(model)
    runner._resume = True
    hook = EMAHook()
    hook.before_run(runner)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    try:
        hook.after_load_checkpoint(runner, {"state_dict": {"weight": torch.ones(2, 2), "bias": torch.ones(2)}})
    finally:
        logger.removeHandler(handler)
    assert any("ema_state_dict" in r.getMessage() and r.levelno == logging.WARNING for r in records)
    assert ema_flat(hook) == [1.0] * 6


def test_a_second_run_on_the_same_model_keeps_the_averages():
    m = 0.5
    hook, runner, model = make(momentum=m)
    train_iters(hook, runner, model, range(3))
    hook.before_run(runner)  # e.g. runner.test() after runner.train()
    assert ema_flat(hook) == pytest.approx(expected_ema([0, 1, 2], [m, m]), abs=1e-6)
    assert hook.steps == 3


def test_checkpoint_saved_during_validation_has_the_same_layout():
    m = 0.5
    hook, runner, model = make(momentum=m)
    train_iters(hook, runner, model, range(3))
    hook.before_val_epoch(runner)
    hook.before_val_epoch(runner)  # a repeated call must not swap back
    checkpoint = {"state_dict": dict(model.state_dict())}
    hook.before_save_checkpoint(runner, checkpoint)
    sd, ema = checkpoint["state_dict"], checkpoint["ema_state_dict"]
    expected = expected_ema([0, 1, 2], [m, m])
    assert sd["weight"].flatten().tolist() + sd["bias"].tolist() == pytest.approx(expected, abs=1e-6)
    assert ema["module.weight"].flatten().tolist() + ema["module.bias"].tolist() == flat(param_values(2))
    hook.after_val_epoch(runner)
    hook.after_val_epoch(runner)
    assert model.weight.flatten().tolist() + model.bias.tolist() == flat(param_values(2))
