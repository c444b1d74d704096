"""A run interrupted at any iteration and resumed ends bit for bit as the uninterrupted run.

The run has everything that draws random numbers or carries state across iterations:
shuffling, dropout, a random augmentation in the dataset, gradient accumulation whose
windows straddle the checkpoints, AMP (bfloat16; float16 with a loss scaler), gradient
clipping, iteration and epoch schedulers, EMA, early stopping and a best checkpoint.
Iteration checkpoints (``by_epoch=False``) in an epoch-based loop, so most of them are in
the middle of an epoch and of an accumulation window.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from minirunner.dataset import SyntheticClassification
from minirunner.hooks import Hook
from minirunner.registry import DATASETS
from minirunner.runner import Runner
from runner_support import loader_cfg

ITERS_PER_EPOCH = 6  # 24 samples, batch 4
MAX_ITERS = 18  # 3 epochs
INTERVAL = 5  # checkpoints at 5, 10, 15 and the last, 18
ACCUMULATE = 3  # windows end at 3, 6, 9, ...: 5 and 10 fall inside one, 15 ends one


@DATASETS.register_module(name="ResumeExactNoisyData")
class NoisyData(SyntheticClassification):
    """Synthetic data with a random augmentation drawn in the main process; counts loads."""

    loads: list[int] = []

    def __getitem__(self, index: int) -> dict:
        NoisyData.loads.append(int(index))
        item = super().__getitem__(index)
        return dict(inputs=item["inputs"] + 0.1 * torch.randn(item["inputs"].shape), data_samples=item["data_samples"])


def _data(num_samples: int, shuffle: bool, kind: str = "SyntheticClassification") -> dict:
    return loader_cfg(num_samples, 4, shuffle, num_features=8, num_classes=3, dataset=kind)


def _cfg(work_dir, dtype: str = "bfloat16", **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3, dropout=0.5),
        work_dir=str(work_dir),
        train_dataloader=_data(24, shuffle=True, kind="ResumeExactNoisyData"),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(
            type="AmpOptimWrapper", dtype=dtype, accumulative_counts=ACCUMULATE, clip_grad=dict(max_norm=1.0),
            optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-3),
        ),
        param_scheduler=[
            dict(type="LinearLR", by_epoch=False, start_factor=0.2, begin=0, end=7),
            dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.7),
        ],
        val_dataloader=_data(8, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(
            logger=dict(interval=2),
            checkpoint=dict(by_epoch=False, interval=INTERVAL, save_best="accuracy/top1", rule="greater"),
        ),
        custom_hooks=[
            dict(type="EMAHook", momentum=0.1),
            dict(type="EarlyStoppingHook", monitor="accuracy/top1", patience=10),
        ],
        randomness=dict(seed=7),
    )
    cfg.update(overrides)
    return cfg


class Interrupted(Exception):
    pass


class CrashAfter(Hook):
    """Raises after iteration ``iters`` (1-based), once every other hook has run."""

    priority = "LOWEST"

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iters:
            raise Interrupted


class Trace(Hook):
    """Records every iteration's loss and where training started."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.started_at: tuple[int, int] | None = None

    def before_train(self, runner):
        self.started_at = (runner.epoch, runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses.append(outputs["loss"].detach().clone())


def _with(cfg: dict, *hooks: Hook) -> dict:
    cfg["custom_hooks"] = list(cfg["custom_hooks"]) + list(hooks)
    return cfg


def _logged(work_dir) -> dict[int, tuple]:
    records = {}
    for folder in sorted(os.listdir(work_dir)):
        path = os.path.join(work_dir, folder, "vis_data", "scalars.json")
        if os.path.isfile(path):
            for line in open(path, encoding="utf-8"):
                record = json.loads(line)
                if "loss" in record:
                    records.setdefault(record["step"], []).append((record["loss"], record["lr"]))
    return records


def _assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        elif isinstance(a[key], dict):
            _assert_same_tensors(a[key], b[key])
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module", params=["bfloat16", "float16"])
def straight(request, tmp_path_factory):
    """The uninterrupted run: (dtype, work dir, trace, runner)."""
    work_dir = tmp_path_factory.mktemp(f"straight_{request.param}")
    trace = Trace()
    runner = Runner(**_with(_cfg(work_dir, request.param), trace))
    runner.train()
    return request.param, work_dir, trace, runner


def test_checkpoints_hold_the_data_position_and_the_unfinished_window(straight):
    _, work_dir, _, _ = straight
    mid = torch.load(work_dir / "iter_10.pth", weights_only=True)
    # Iteration 10 is the 4th batch of the second epoch: 4 batches of 4 samples used.
    assert mid["loop"]["epoch"] == 1 and mid["loop"]["iter"] == 10
    assert {k: mid["sampler"][k] for k in ("epoch", "batches", "samples", "batch_size", "seed")} == {
        "epoch": 1, "batches": 4, "samples": 16, "batch_size": 4, "seed": 7,
    }
    # 10 % 3 == 1: one micro-batch of the window is in the gradients, which are saved.
    assert mid["accumulation"] == {"inner_count": [10], "accumulative_counts": [3]}
    assert set(mid["grads"]) == {"net.1.weight", "net.1.bias", "net.4.weight", "net.4.bias"}
    # 15 ends a window: the gradients were applied and zeroed, nothing to save.
    assert "grads" not in torch.load(work_dir / "iter_15.pth", weights_only=True)


@pytest.mark.parametrize("crash_at", [8, 13, 17])
def test_resume_after_a_crash_matches_the_uninterrupted_run(tmp_path, straight, crash_at):
    dtype, straight_dir, straight_trace, straight_runner = straight
    with pytest.raises(Interrupted):
        Runner(**_with(_cfg(tmp_path, dtype), CrashAfter(crash_at))).train()
    NoisyData.loads.clear()
    trace = Trace()
    resumed = Runner(**_with(_cfg(tmp_path, dtype, resume="auto"), trace))
    resumed.train()

    start = crash_at - crash_at % INTERVAL  # the newest checkpoint at the crash
    assert trace.started_at == (start // ITERS_PER_EPOCH, start)
    # The consumed samples of the interrupted epoch were skipped, not loaded: the resumed
    # run loaded the rest of that epoch and the later ones only.
    assert len(NoisyData.loads) == 4 * (MAX_ITERS - start)
    # Every loss from the resume point on, and the final weights, bit for bit.
    for got, want in zip(trace.losses, straight_trace.losses[start:], strict=True):
        assert torch.equal(got, want)
    _assert_same_tensors(resumed.model.state_dict(), straight_runner.model.state_dict())
    final, expected = (torch.load(d / "iter_18.pth", weights_only=True) for d in (tmp_path, straight_dir))
    _assert_same_tensors(final["ema_state_dict"], expected["ema_state_dict"])
    _assert_same_tensors(final["optimizer"], expected["optimizer"])  # momentum, loss scaler
    assert final["param_schedulers"] == expected["param_schedulers"]
    assert final["hooks"]["EarlyStoppingHook"] == expected["hooks"]["EarlyStoppingHook"]
    assert final["hooks"]["checkpoint"]["best_scores"] == expected["hooks"]["checkpoint"]["best_scores"]
    if dtype == "float16":
        assert "loss_scaler" in final["optimizer"]
    # The logged (smoothed) losses and learning rates: every step logged by either part of
    # the interrupted run, replayed steps included, equals the uninterrupted run's.
    want = _logged(straight_dir)
    for step, values in _logged(tmp_path).items():
        assert all(value == want[step][0] for value in values), step


def test_resume_at_an_epoch_and_window_boundary(tmp_path, straight):
    # The first run is stopped between iterations (stop_training, as early stopping does)
    # right at a window boundary that is also an epoch boundary; nothing is lost there.
    dtype, _, straight_trace, straight_runner = straight

    class StopAt(Hook):
        def after_train_epoch(self, runner):
            if runner.epoch + 1 == 2:
                runner.train_loop.stop_training = True

    cfg = _cfg(tmp_path, dtype)
    cfg["default_hooks"]["checkpoint"] = dict(by_epoch=True, interval=1)
    Runner(**_with(cfg, StopAt())).train()
    trace = Trace()
    cfg = _cfg(tmp_path, dtype, resume=True)
    cfg["default_hooks"]["checkpoint"] = dict(by_epoch=True, interval=1)
    resumed = Runner(**_with(cfg, trace))
    resumed.train()
    assert trace.started_at == (2, 12)
    for got, want in zip(trace.losses, straight_trace.losses[12:], strict=True):
        assert torch.equal(got, want)
    _assert_same_tensors(resumed.model.state_dict(), straight_runner.model.state_dict())
