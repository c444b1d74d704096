"""EarlyStoppingHook: stop points of hand-written metric sequences, errors, state."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from minirunner.hooks.early_stopping_hook import EarlyStoppingHook, infer_rule
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError


class FakeLoop:
    def __init__(self) -> None:
        self.stop_training = False


class FakeRunner:
    def __init__(self) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.iter = 0
        self.epoch = 0
        self.max_iters = 100
        self.max_epochs = 100
        self.train_loop = FakeLoop()
        self.logger = logging.getLogger("minirunner")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def logs():
    handler = Capture()
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def stop_at(hook: EarlyStoppingHook, values: list[float], key: str | None = None) -> int | None:
    """Feed one validation result per epoch; the 1-based validation that stopped training."""
    runner = FakeRunner()
    hook.before_train(runner)
    for n, value in enumerate(values, start=1):
        runner.epoch = n
        hook.after_val_epoch(runner, {key or hook.monitor: value, "other": 0.0})
        if runner.train_loop.stop_training:
            return n
    return None


def test_greater_rule_with_min_delta_and_patience():
    hook = EarlyStoppingHook("accuracy/top1", min_delta=0.5, patience=2)
    assert hook.rule == "greater"
    # 50 best; 51 >= 50.5 best; 51.2 < 51.5 wait 1; 51.4 wait 2 -> stop.
    assert stop_at(hook, [50, 51, 51.2, 51.4, 52]) == 4
    assert hook.best_score == 51


def test_an_improvement_resets_the_count():
    hook = EarlyStoppingHook("acc", min_delta=1.0, patience=2)
    # 10; 10.5 wait 1; 11 = 10 + 1 improves (>=) and resets; 11.5 wait 1; 12 improves; 12 w1; 12 w2.
    assert stop_at(hook, [10, 10.5, 11, 11.5, 12, 12, 12]) == 7
    assert hook.best_score == 12


def test_less_rule_inferred_from_loss():
    hook = EarlyStoppingHook("val/loss", patience=3)  # min_delta 0.1
    assert hook.rule == "less"
    # 1.0 best; 0.95 > 0.9 wait 1; 0.75 <= 0.9 best; 0.7 > 0.65 w1; 0.68 w2; 0.66 w3 -> stop.
    assert stop_at(hook, [1.0, 0.95, 0.75, 0.7, 0.68, 0.66, 0.1]) == 6
    assert hook.best_score == 0.75


def test_less_rule_counts_an_exact_min_delta_drop_as_improvement():
    hook = EarlyStoppingHook("loss", min_delta=0.5, patience=1)
    # 1.0 best; 0.5 = 1.0 - 0.5 improves (<=); 0.25 > 0.0 -> stop at the 3rd.
    assert stop_at(hook, [1.0, 0.5, 0.25]) == 3


def test_never_stops_while_improving():
    hook = EarlyStoppingHook("loss", min_delta=0.0, patience=1)
    assert stop_at(hook, [5.0, 4.0, 3.0, 3.0 - 1e-9]) is None
    assert stop_at(EarlyStoppingHook("loss", min_delta=0.0, patience=1), [5.0, 5.5]) == 2


def test_stopping_threshold_is_strict():
    hook = EarlyStoppingHook("mIoU", stopping_threshold=90, patience=100)
    assert stop_at(hook, [80, 89, 90, 91, 95]) == 4
    assert hook.best_score == 91
    hook = EarlyStoppingHook("loss", stopping_threshold=0.5, patience=100)
    assert stop_at(hook, [0.9, 0.5, 0.49]) == 3


def test_non_finite_stops_and_logs(logs):
    hook = EarlyStoppingHook("acc")
    assert stop_at(hook, [0.5, float("nan"), 0.9]) == 2
    assert "not finite" in logs.text() and "Early stopping" in logs.text()
    assert stop_at(EarlyStoppingHook("loss"), [1.0, math.inf]) == 2


def test_non_finite_without_check_is_never_an_improvement():
    hook = EarlyStoppingHook("acc", check_finite=False, patience=2)
    assert stop_at(hook, [0.5, float("nan"), float("nan"), 0.9]) == 3
    hook = EarlyStoppingHook("loss", check_finite=False, patience=2)
    # inf is worse than anything for 'less': two in a row stop.
    assert stop_at(hook, [1.0, math.inf, math.inf]) == 3


def test_stop_reason_is_logged(logs):
    hook = EarlyStoppingHook("acc", patience=1)
    assert stop_at(hook, [3.0, 2.0]) == 2
    assert "not improved" in logs.text() and "acc" in logs.text()


def test_missing_metric_warns_once_with_available_keys(logs):
    hook = EarlyStoppingHook("accuracy/top1", patience=1)
    runner = FakeRunner()
    for _ in range(3):
        hook.after_val_epoch(runner, {"accuracy/top5": 90.0, "loss": 1.0})
    assert not runner.train_loop.stop_training
    warnings = [r for r in logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'accuracy/top5'" in warnings[0].getMessage() and "'loss'" in warnings[0].getMessage()


def test_missing_metric_strict_raises_naming_the_keys():
    hook = EarlyStoppingHook("accuracy/top", strict=True)
    with pytest.raises(ConfigError) as info:
        hook.after_val_epoch(FakeRunner(), {"accuracy/top1": 90.0})
    assert info.value.key == "monitor"
    assert "Did you mean 'accuracy/top1'" in str(info.value)


@pytest.mark.parametrize(
    "name, rule",
    [
        ("accuracy/top1", "greater"), ("acc", "greater"), ("coco/bbox_mAP", "greater"),
        ("mIoU", "greater"), ("AR@100", "greater"), ("val/loss", "less"), ("Loss", "less"),
        ("loss_cls", "less"), ("acc_loss", "greater"),
    ],
)
def test_rule_inference(name, rule):
    assert infer_rule(name) == rule


def test_uninferable_rule_asks_for_one():
    with pytest.raises(ConfigError, match="rule='greater' or rule='less'") as info:
        EarlyStoppingHook("f1_score")
    assert info.value.key == "rule"
    assert EarlyStoppingHook("f1_score", rule="greater").rule == "greater"


def test_bad_arguments_name_the_key():
    with pytest.raises(ConfigError, match="Did you mean 'greater'") as info:
        EarlyStoppingHook("acc", rule="grater")
    assert info.value.key == "rule"
    for patience in (0, -1, 1.5):
        with pytest.raises(ConfigError) as info:
            EarlyStoppingHook("acc", patience=patience)
        assert info.value.key == "patience"
    with pytest.raises(ConfigError) as info:
        EarlyStoppingHook("acc", min_delta=-0.1)
    assert info.value.key == "min_delta"
    with pytest.raises(ConfigError, match="patience"):
        HOOKS.build(dict(type="EarlyStoppingHook", monitor="acc", patience=0))


def test_state_round_trip_continues_the_count(tmp_path):
    values = [50, 51, 51.2, 51.4, 52]  # stops at the 4th with patience 2 (see above)
    first = EarlyStoppingHook("acc", min_delta=0.5, patience=2)
    assert stop_at(first, values[:3]) is None  # best 51, one validation without improvement
    torch.save({"hooks": {"EarlyStoppingHook": first.state_dict()}}, tmp_path / "ckpt.pth")
    state = torch.load(tmp_path / "ckpt.pth", weights_only=True)["hooks"]["EarlyStoppingHook"]
    assert state["best_score"] == 51 and state["wait_count"] == 1
    resumed = EarlyStoppingHook("acc", min_delta=0.5, patience=2)
    resumed.load_state_dict(state)
    assert stop_at(resumed, values[3:]) == 1  # 51.4: the second validation without improvement


def test_state_of_another_metric_is_ignored(logs):
    first = EarlyStoppingHook("acc")
    stop_at(first, [10.0])
    hook = EarlyStoppingHook("loss")
    hook.load_state_dict(first.state_dict())
    assert hook.best_score == math.inf and hook.wait_count == 0
    assert "afresh" in logs.text()


def test_initial_state_round_trips_infinity(tmp_path):
    hook = EarlyStoppingHook("loss")
    torch.save(hook.state_dict(), tmp_path / "s.pth")
    assert torch.load(tmp_path / "s.pth", weights_only=True)["best_score"] == math.inf


def test_priority_and_loop_check():
    assert EarlyStoppingHook.priority == "LOWEST"
    runner = FakeRunner()
    runner.train_loop = object()
    with pytest.raises(RuntimeError, match="stop_training"):
        EarlyStoppingHook("acc").before_train(runner)
