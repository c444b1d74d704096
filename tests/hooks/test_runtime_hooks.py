"""IterTimerHook, DistSamplerSeedHook and RuntimeInfoHook: what they put where."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
import torch.nn.functional as F

from minirunner.dataset import SyntheticClassification
from minirunner.hooks import Hook
from minirunner.runner import Runner
from runner_support import loader_cfg as _data

SEED = 11


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(8, 2),  # 4 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(6, 2, shuffle=False),  # 3 iterations
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(checkpoint=None, logger=dict(interval=1000)),
        randomness=dict(seed=SEED),
    )
    cfg.update(overrides)
    return cfg


class Observer(Hook):
    """Keeps the batches, the sampler's epoch, the lr and the loss of every iteration."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.sampler_epochs: list[int] = []
        self.lrs: list[float] = []
        self.losses: list[torch.Tensor] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.inputs.append(data_batch["inputs"].clone())
        self.labels.append(data_batch["data_samples"].clone())
        self.sampler_epochs.append(runner.train_dataloader.sampler.epoch)
        self.lrs.append(runner.optim_wrapper.param_groups[0]["lr"])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs["loss"].clone())


def _values(runner: Runner, key: str) -> list[float]:
    return list(runner.message_hub.get_scalar(key).data[0])


# ---------------------------------------------------------------- IterTimerHook


def test_timer_puts_time_and_data_time_in_the_hub(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    runner.train()
    train_time, train_data = _values(runner, "train/time"), _values(runner, "train/data_time")
    assert len(train_time) == len(train_data) == 12
    # An iteration's time includes the wait for its batch.
    assert all(t >= d >= 0 for t, d in zip(train_time, train_data))
    # Three validations of 3 iterations each.
    assert len(_values(runner, "val/time")) == len(_values(runner, "val/data_time")) == 9


def test_without_timer_no_times(tmp_path):
    runner = Runner(**_cfg(tmp_path, default_hooks=dict(checkpoint=None, timer=None, logger=dict(interval=1000))))
    runner.train()
    assert "train/time" not in runner.message_hub.log_scalars


# ---------------------------------------------------------------- DistSamplerSeedHook


def _expected_inputs(epoch: int) -> list[torch.Tensor]:
    # DefaultSampler: randperm seeded with seed + epoch, cut into batches of 2.
    data = SyntheticClassification(num_samples=8, num_features=4, num_classes=2)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(SEED + epoch))
    return [data.inputs[order[i : i + 2]] for i in range(0, 8, 2)]


def test_sampler_seed_hook_sets_the_epoch(tmp_path):
    observer = Observer()
    Runner(**_cfg(tmp_path, custom_hooks=[observer])).train()
    assert observer.sampler_epochs == [0] * 4 + [1] * 4 + [2] * 4
    for epoch in range(3):
        for got, want in zip(observer.inputs[4 * epoch : 4 * epoch + 4], _expected_inputs(epoch), strict=True):
            assert torch.equal(got, want)


def test_without_sampler_seed_hook_every_epoch_repeats_the_order(tmp_path):
    observer = Observer()
    cfg = _cfg(tmp_path, custom_hooks=[observer],
               default_hooks=dict(checkpoint=None, sampler_seed=None, logger=dict(interval=1000)))
    Runner(**cfg).train()
    assert observer.sampler_epochs == [0] * 12
    for index in range(4):
        assert torch.equal(observer.inputs[index], observer.inputs[index + 4])
        assert torch.equal(observer.inputs[index], observer.inputs[index + 8])


# ---------------------------------------------------------------- RuntimeInfoHook


def test_runtime_info_puts_lr_loss_and_counters_in_the_hub(tmp_path):
    observer = Observer()
    cfg = _cfg(tmp_path, custom_hooks=[observer],
               param_scheduler=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5))
    runner = Runner(**cfg)
    runner.train()
    hub = runner.message_hub
    assert _values(runner, "train/lr") == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 4)
    assert _values(runner, "train/lr") == pytest.approx(observer.lrs)
    assert _values(runner, "train/loss") == pytest.approx([float(loss) for loss in observer.losses])
    assert "train/grad_norm" not in hub.log_scalars  # no clip_grad: no norm is computed
    assert hub.get_info("max_epochs") == 3 and hub.get_info("max_iters") == 12
    assert hub.get_info("epoch") == 2 and hub.get_info("iter") == 11
    assert hub.get_info("seed") == SEED
    assert len(_values(runner, "val/accuracy/top1")) == 3


def test_runtime_info_logs_the_pre_clip_grad_norm(tmp_path):
    observer = Observer()
    cfg = _cfg(tmp_path, custom_hooks=[observer], train_cfg=dict(by_epoch=True, max_epochs=1),
               optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.5), clip_grad=dict(max_norm=0.05)))
    runner = Runner(**cfg)
    initial = copy.deepcopy(runner.model)
    runner.train()
    norms = _values(runner, "train/grad_norm")
    assert len(norms) == 4

    # The same steps by hand: clip_grad_norm_ returns the norm before clipping.
    optimizer = torch.optim.SGD(initial.parameters(), lr=0.5)
    expected = []
    for inputs, labels in zip(observer.inputs, observer.labels):
        loss = F.cross_entropy(initial(inputs, mode="tensor"), labels)
        loss.backward()
        expected.append(float(torch.nn.utils.clip_grad_norm_(initial.parameters(), max_norm=0.05)))
        optimizer.step()
        optimizer.zero_grad()
    assert norms == pytest.approx(expected, rel=1e-5)
    assert max(expected) > 0.05  # the clipping really happened
    for got, want in zip(runner.model.parameters(), initial.parameters()):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # The logger reports it too (one line at the end of the 4-iteration epoch).
    with open(os.path.join(runner.log_dir, "vis_data", "scalars.json"), encoding="utf-8") as handle:
        (record,) = [r for r in map(json.loads, handle) if "loss" in r]
    assert record["grad_norm"] == pytest.approx(sum(expected) / 4, rel=1e-5)


def test_runtime_info_goes_through_an_overridden_get_lr(tmp_path):
    from minirunner.optim import OptimWrapper
    from minirunner.registry import OPTIM_WRAPPERS

    @OPTIM_WRAPPERS.register_module(name="_HalfLrReportForTest", force=True)
    class HalfLrReport(OptimWrapper):
        def get_lr(self):
            return {"lr": [group["lr"] / 2 for group in self.optimizer.param_groups], "extra_lr": [7.0]}

    cfg = _cfg(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=1),
               optim_wrapper=dict(type="_HalfLrReportForTest", optimizer=dict(type="SGD", lr=0.1)))
    runner = Runner(**cfg)
    runner.train()
    assert _values(runner, "train/lr") == pytest.approx([0.05] * 4)
    assert _values(runner, "train/extra_lr") == [7.0] * 4
