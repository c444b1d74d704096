"""The runner's side of parameter scheduling and accumulation: default `end`, when schedulers
step, and initialize_count_status before the loop."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from minirunner.hooks import Hook
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg


def _data(num_samples: int = 16, batch_size: int = 4, shuffle: bool = True) -> dict:
    return loader_cfg(num_samples, batch_size, shuffle)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(),  # 4 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=4),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.4)),
        default_hooks=dict(checkpoint=None, logger=dict(interval=1000)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class LrRecorder(Hook):
    """The learning rate each iteration trains with (read just before the step)."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.lrs.append(runner.optim_wrapper.param_groups[0]["lr"])


def _train_lrs(tmp_path, **overrides) -> tuple[Runner, list[float]]:
    recorder = LrRecorder()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[recorder], **overrides))
    runner.train()
    return runner, recorder.lrs


def test_missing_end_is_max_epochs_or_max_iters(tmp_path):
    runner = Runner(**_cfg(tmp_path, param_scheduler=[
        dict(type="CosineAnnealingLR", by_epoch=True, eta_min=0.0),
        dict(type="LinearLR", by_epoch=False, start_factor=0.5),
        dict(type="ConstantLR", by_epoch=True, factor=0.5, end=2),  # given: kept
    ]))
    runner.train()
    cosine, linear, constant = runner.param_schedulers
    assert cosine.end == 4 and cosine.T_max == 4  # max_epochs; T_max defaults to end - begin
    assert linear.end == 16  # max_iters = 4 epochs x 4 iterations
    assert constant.end == 2


def test_missing_end_with_convert_to_iter_based(tmp_path):
    runner = Runner(**_cfg(tmp_path, param_scheduler=dict(
        type="CosineAnnealingLR", by_epoch=True, convert_to_iter_based=True, eta_min=0.0)))
    runner.train()
    (scheduler,) = runner.param_schedulers
    # end = max_epochs, converted to iterations: 4 x 4.
    assert scheduler.by_epoch is False and scheduler.end == 16 and scheduler.T_max == 16


def test_missing_end_in_iter_based_loop(tmp_path):
    runner = Runner(**_cfg(tmp_path, train_cfg=dict(by_epoch=False, max_iters=10),
                           param_scheduler=dict(type="LinearLR", by_epoch=False, start_factor=0.1)))
    runner.train()
    assert runner.param_schedulers[0].end == 10


def test_epoch_scheduler_steps_after_each_epoch(tmp_path):
    _, lrs = _train_lrs(tmp_path, param_scheduler=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5))
    expected = [0.4 * 0.5 ** (i // 4) for i in range(16)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_iter_scheduler_steps_after_each_iteration(tmp_path):
    # LinearLR alone: b * (s + (1 - s) * min(t, T) / T), T = end - begin - 1.
    _, lrs = _train_lrs(tmp_path, param_scheduler=dict(
        type="LinearLR", by_epoch=False, start_factor=0.2, begin=0, end=7))
    T = 7 - 0 - 1
    expected = [0.4 * (0.2 + 0.8 * min(t, T) / T) for t in range(16)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_iter_warmup_then_epoch_cosine(tmp_path):
    # The default config's shape: a linear warm-up over the first epoch (by iteration), then
    # cosine by epoch from epoch 1 with the end filled in (4), so T_max = 3.
    _, lrs = _train_lrs(tmp_path, param_scheduler=[
        dict(type="LinearLR", by_epoch=False, start_factor=0.25, begin=0, end=4),
        dict(type="CosineAnnealingLR", by_epoch=True, begin=1, eta_min=0.0),
    ])
    expected = []
    for i in range(16):
        linear = 0.25 + 0.75 * min(i, 3) / 3
        epoch = i // 4
        cosine = 1.0 if epoch < 1 else (1 + math.cos(math.pi * (epoch - 1) / 3)) / 2
        expected.append(0.4 * linear * cosine)
    assert lrs == pytest.approx(expected, rel=1e-9)


def test_epoch_scheduler_converted_to_iterations(tmp_path):
    _, lrs = _train_lrs(tmp_path, param_scheduler=dict(
        type="MultiStepLR", by_epoch=True, convert_to_iter_based=True, milestones=[1, 3], gamma=0.1))
    # Milestones at iterations 4 and 12.
    expected = [0.4 * 0.1 ** sum(i >= m for m in (4, 12)) for i in range(16)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_iter_scheduler_in_iter_based_loop(tmp_path):
    _, lrs = _train_lrs(tmp_path, train_cfg=dict(by_epoch=False, max_iters=9),
                        param_scheduler=dict(type="ExponentialLR", by_epoch=False, gamma=0.9))
    assert lrs == pytest.approx([0.4 * 0.9 ** t for t in range(9)], rel=1e-12)


class BatchRecorder(Hook):
    """Keeps a copy of every training batch and the weights after every iteration."""

    def __init__(self) -> None:
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.weights: list[torch.Tensor] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.batches.append((data_batch["inputs"].clone(), data_batch["data_samples"].clone()))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.weights.append(runner.model.net[-1].weight.detach().clone())


def test_accumulation_windows_run_across_epochs(tmp_path):
    # 2 epochs of 5 iterations = 10 iterations, k = 4: steps after iterations 4 and 8 (the
    # second window crosses the epoch boundary) and 10 (the last, short window of 2, whose
    # losses are divided by 2 instead of 4). Per-epoch windows would step after 4, 5, 9, 10.
    recorder = BatchRecorder()
    cfg = _cfg(
        tmp_path, custom_hooks=[recorder], train_dataloader=_data(10, 2),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.4), accumulative_counts=4),
    )
    runner = Runner(**cfg)
    initial = copy.deepcopy(runner.model.state_dict())
    weights = [runner.model.net[-1].weight.detach().clone()]
    runner.train()

    weights += recorder.weights
    changed = [i for i in range(1, 11) if not torch.equal(weights[i], weights[i - 1])]
    assert changed == [4, 8, 10]

    # The same run written by hand in plain PyTorch.
    reference = copy.deepcopy(runner.model)
    reference.load_state_dict(initial)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.4)
    for index, (inputs, labels) in enumerate(recorder.batches, start=1):
        divisor = 4 if index <= 8 else 2
        loss = F.cross_entropy(reference(inputs, mode="tensor"), labels) / divisor
        loss.backward()
        if index % 4 == 0 or index == 10:
            optimizer.step()
            optimizer.zero_grad()
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(runner.model.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_auto_scale_lr_scales_by_total_batch_size(tmp_path):
    # batch 4 on one process against base_batch_size 16: lr x 0.25, before the schedulers
    # record their base values.
    runner, lrs = _train_lrs(
        tmp_path, auto_scale_lr=dict(enable=True, base_batch_size=16),
        param_scheduler=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5),
    )
    assert lrs == pytest.approx([0.1 * 0.5 ** (i // 4) for i in range(16)], rel=1e-12)


def test_auto_scale_lr_disabled_or_missing_base(tmp_path):
    _, lrs = _train_lrs(tmp_path / "off", auto_scale_lr=dict(enable=False, base_batch_size=16))
    assert lrs == pytest.approx([0.4] * 16)
    runner = Runner(**_cfg(tmp_path / "bad", auto_scale_lr=dict(enable=True)))
    with pytest.raises(ConfigError, match="base_batch_size"):
        runner.train()
