"""ReduceOnPlateau: patience, cooldown, both rules, both threshold rules, min_value.

Expected sequences are written out by hand from torch's ReduceLROnPlateau definition, and
the same runs are compared with torch's own ReduceLROnPlateau.
"""

from __future__ import annotations

import pytest
import torch

import minirunner.optim.scheduler  # noqa: F401
from minirunner.optim.scheduler import ReduceOnPlateauLR, ReduceOnPlateauParamScheduler
from minirunner.utils import ConfigError


def sgd(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def run_like_the_runner(scheduler, metrics_per_epoch, key="loss"):
    """After each epoch: step() (counts the epoch), then validation: step(metrics)."""
    lrs = []
    for value in metrics_per_epoch:
        scheduler.step()
        scheduler.step({key: value, "other": 0.0})
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
    return lrs


def run_torch(metrics, **kwargs):
    opt = sgd()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    lrs = []
    for value in metrics:
        scheduler.step(value)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def test_patience():
    metrics = [5, 4, 4, 4, 3, 3, 3, 3]
    scheduler = ReduceOnPlateauLR(sgd(), patience=1, factor=0.5, threshold=0, threshold_rule="abs")
    got = run_like_the_runner(scheduler, metrics)
    # 5, 4 improve; two bad validations (> patience=1) reduce at the 4th; again at the 7th.
    assert got == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert got == run_torch(metrics, patience=1, factor=0.5, threshold=0, threshold_mode="abs")


def test_cooldown():
    metrics = [5] * 6
    scheduler = ReduceOnPlateauLR(sgd(), patience=0, cooldown=2, factor=0.5)
    got = run_like_the_runner(scheduler, metrics)
    # Reduce at the 2nd; the next two are cooldown; reduce again at the 5th.
    assert got == [1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert got == run_torch(metrics, patience=0, cooldown=2, factor=0.5)


def test_greater_rule_with_relative_threshold_and_min_value():
    metrics = [1.0, 1.05, 1.2, 1.25, 1.3, 1.31]
    scheduler = ReduceOnPlateauLR(
        sgd(), rule="greater", patience=0, factor=0.5, threshold=0.1, min_value=0.2,
        monitor="acc",
    )
    got = run_like_the_runner(scheduler, metrics, key="acc")
    # 1.05 < 1.0*1.1: bad -> 0.5; 1.2 improves; 1.25, 1.3 < 1.32: bad -> 0.25, then
    # max(0.125, 0.2) = 0.2; 0.2*0.5 clamps to 0.2 again, a change below eps: skipped.
    assert got == [1, 0.5, 0.5, 0.25, 0.2, 0.2]
    assert got == run_torch(metrics, mode="max", patience=0, factor=0.5, threshold=0.1,
                            min_lr=0.2)


def test_less_rule_with_relative_threshold():
    metrics = [10.0, 9.95, 9.0, 8.999, 8.0]
    scheduler = ReduceOnPlateauLR(sgd(), patience=0, factor=0.1, threshold=0.01)
    got = run_like_the_runner(scheduler, metrics)
    # 9.95 is not < 10*0.99: reduce; 9.0 improves; 8.999 is not < 8.91: reduce; 8.0 improves.
    assert got == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    assert got == run_torch(metrics, patience=0, factor=0.1, threshold=0.01)


def test_greater_rule_with_absolute_threshold():
    metrics = [0.5, 0.55, 0.7, 0.75, 0.79]
    scheduler = ReduceOnPlateauLR(
        sgd(), rule="greater", patience=1, factor=0.5, threshold=0.1, threshold_rule="abs"
    )
    got = run_like_the_runner(scheduler, metrics)
    # 0.55 <= 0.6: bad 1; 0.7 > 0.6 improves; 0.75, 0.79 <= 0.8: bad 1, bad 2 -> reduce.
    assert got == [1, 1, 1, 1, 0.5]
    assert got == run_torch(metrics, mode="max", patience=1, factor=0.5, threshold=0.1,
                            threshold_mode="abs")


def test_begin_and_end_count_training_epochs():
    scheduler = ReduceOnPlateauLR(sgd(), patience=0, factor=0.5, begin=2, end=4)
    got = run_like_the_runner(scheduler, [5, 5, 5, 5, 5, 5])
    # Epoch counts 1..6: validations after epochs 2 and 3 count (the first sets best);
    # those after epoch 1 and after epoch 4 onward are outside [begin, end).
    assert got == [1, 1, 0.5, 0.5, 0.5, 0.5]


def test_state_dict_mid_plateau(tmp_path):
    metrics = [5, 4, 4, 4, 3, 3, 3, 3, 3]
    opt = sgd()
    scheduler = ReduceOnPlateauLR(opt, patience=1, factor=0.5, cooldown=1)
    run_like_the_runner(scheduler, metrics[:3])
    torch.save(dict(o=opt.state_dict(), s=scheduler.state_dict()), tmp_path / "p.pth")
    want = run_like_the_runner(scheduler, metrics[3:])
    saved = torch.load(tmp_path / "p.pth", weights_only=True)
    opt2 = sgd()
    scheduler2 = ReduceOnPlateauLR(opt2, patience=1, factor=0.5, cooldown=1)
    opt2.load_state_dict(saved["o"])
    scheduler2.load_state_dict(saved["s"])
    assert run_like_the_runner(scheduler2, metrics[3:]) == want


def test_tensor_metric_is_accepted():
    scheduler = ReduceOnPlateauLR(sgd(), patience=0, factor=0.5)
    scheduler.step(dict(loss=torch.tensor(2.0)))
    scheduler.step(dict(loss=torch.tensor(2.0)))
    assert scheduler.get_last_value() == [0.5]


def test_unknown_rule_names_the_scheduler_and_argument():
    with pytest.raises(ConfigError, match=r"^rule: ReduceOnPlateauLR got rule='lesser'.*"
                       r"'greater', 'less'.*Did you mean"):
        ReduceOnPlateauLR(sgd(), rule="lesser")
    with pytest.raises(ConfigError, match=r"torch calls it mode='max'; here it is rule='greater'"):
        ReduceOnPlateauLR(sgd(), rule="max")
    with pytest.raises(ConfigError, match=r"^threshold_rule: ReduceOnPlateauParamScheduler"):
        ReduceOnPlateauParamScheduler(sgd(), "lr", threshold_rule="relative")


def test_missing_monitor_in_metrics():
    scheduler = ReduceOnPlateauLR(sgd(), monitor="acc/top1")
    with pytest.raises(ConfigError, match=r"^monitor: ReduceOnPlateauLR monitors 'acc/top1'.*"
                       r"'accuracy/top1'.*Did you mean 'accuracy/top1'"):
        scheduler.step({"accuracy/top1": 50.0})


def test_by_epoch_false_and_bad_factor():
    with pytest.raises(ConfigError, match=r"^by_epoch: ReduceOnPlateauLR got by_epoch=False"):
        ReduceOnPlateauLR(sgd(), by_epoch=False)
    with pytest.raises(ConfigError, match=r"^factor: ReduceOnPlateauLR got factor=1.0"):
        ReduceOnPlateauLR(sgd(), factor=1.0)
