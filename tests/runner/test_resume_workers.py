"""Resuming with dataloader workers: the same samples in the same order; workers seeded by epoch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from minirunner.hooks import Hook
from minirunner.registry import DATASETS
from minirunner.runner import Runner

pytestmark = [pytest.mark.multiprocess]  # DataLoader worker processes


@DATASETS.register_module(name="ResumeWorkersIndexed")
class Indexed(Dataset):
    """Item i: inputs ``[i, noise]``, the noise drawn from the loading worker's torch RNG."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.tensor([float(index), torch.rand(()).item()]), data_samples=torch.tensor(index % 3))


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=2, hidden_dims=(4,), num_classes=3),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type="ResumeWorkersIndexed"),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=4,  # 6 iterations per epoch
            num_workers=2,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=4)),
        randomness=dict(seed=11),
    )
    cfg.update(overrides)
    return cfg


class Record(Hook):
    """The sample indices and worker noise of every batch, by iteration."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.batches: dict[int, tuple[list[int], list[float]]] = {}
        self.stop_at = stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        inputs = data_batch["inputs"]
        self.batches[runner.iter] = (inputs[:, 0].long().tolist(), inputs[:, 1].tolist())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.stop_at:
            raise KeyboardInterrupt  # any exception ends the run; the checkpoint stays


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Record:
    record = Record()
    Runner(**_cfg(tmp_path_factory.mktemp("straight"), custom_hooks=[record])).train()
    return record


@pytest.mark.timeout(120)
def test_mid_epoch_resume_with_workers_gives_the_same_sample_order(tmp_path, straight):
    with pytest.raises(KeyboardInterrupt):
        Runner(**_cfg(tmp_path, custom_hooks=[Record(stop_at=10)])).train()
    resumed = Record()
    Runner(**_cfg(tmp_path, resume=True, custom_hooks=[resumed])).train()
    # Resumed from iter_8.pth: the third batch of epoch 2, then everything after.
    assert min(resumed.batches) == 8 and max(resumed.batches) == 17
    for iteration, (indices, _) in resumed.batches.items():
        assert indices == straight.batches[iteration][0], iteration
    # Each epoch is a permutation of the data (the skip neither repeated nor lost samples).
    for epoch in range(3):
        seen = sorted(i for it in range(6 * epoch, 6 * epoch + 6) for i in straight.batches[it][0])
        assert seen == list(range(24))


@pytest.mark.timeout(120)
def test_workers_draw_anew_each_epoch_and_repeat_after_an_epoch_resume(tmp_path, straight):
    noise = {it: values for it, (_, values) in straight.batches.items()}
    # The first batch of each epoch comes from worker 0, seeded by (seed, epoch, worker):
    # different epochs draw different noise.
    assert noise[0] != noise[6] and noise[6] != noise[12]
    # A run stopped at the end of epoch 2 and resumed: the workers of epoch 3 draw what
    # the uninterrupted run's drew (the DataLoader's random base seed plays no part).
    cfg = _cfg(tmp_path, default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=True, interval=1)))
    with pytest.raises(KeyboardInterrupt):
        Runner(**dict(cfg, custom_hooks=[Record(stop_at=13)])).train()
    resumed = Record()
    Runner(**dict(cfg, resume=True, custom_hooks=[resumed])).train()
    assert min(resumed.batches) == 12
    for iteration, (indices, values) in resumed.batches.items():
        assert (indices, values) == straight.batches[iteration], iteration
