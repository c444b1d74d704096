"""A run resumed mid-epoch draws the same random augmentations as the run it continues: with
workers because each sample's transforms are seeded from (seed, epoch, index), without them
because the checkpoint restores the main process's RNG."""

from __future__ import annotations

import pytest
import torch
from vision_support import write_cifar10

from minirunner.hooks import Hook
from minirunner.runner import Runner

pytestmark = [pytest.mark.multiprocess]  # DataLoader worker processes


class Record(Hook):
    """Every batch's (augmented) images by iteration; stops the run after ``stop_at`` iterations."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.batches: dict[int, torch.Tensor] = {}
        self.stop_at = stop_at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches[runner.iter] = data_batch["inputs"].clone()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.stop_at:
            raise KeyboardInterrupt  # the run ends here; its checkpoints stay


def _cfg(work_dir, data_root, num_workers: int, **overrides) -> dict:
    cfg = dict(
        model=dict(
            type="MLPClassifier", in_features=3 * 12 * 12, hidden_dims=(8,), num_classes=10,
            data_preprocessor=dict(type="ImgDataPreprocessor", mean=[127.5] * 3, std=[64.0] * 3),
        ),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type="CIFAR10", data_root=str(data_root), verify=False, pipeline=[
                dict(type="RandomResizedCrop", size=12), dict(type="RandomHorizontalFlip")]),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=4,  # 20 images: 5 iterations per epoch
            num_workers=num_workers,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=3)),
        randomness=dict(seed=7),
    )
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=4, test_size=2)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("num_workers", [0, 2])
def test_mid_epoch_resume_repeats_the_augmentations(tmp_path, cifar, num_workers):
    straight = Record()
    Runner(**_cfg(tmp_path / "straight", cifar, num_workers, custom_hooks=[straight])).train()
    with pytest.raises(KeyboardInterrupt):
        Runner(**_cfg(tmp_path / "resumed", cifar, num_workers, custom_hooks=[Record(stop_at=8)])).train()
    resumed = Record()
    Runner(**_cfg(tmp_path / "resumed", cifar, num_workers, resume=True, custom_hooks=[resumed])).train()
    # Resumed from iter_6.pth: the second batch of epoch 2 onwards.
    assert sorted(resumed.batches) == [6, 7, 8, 9]
    for iteration, images in resumed.batches.items():
        assert torch.equal(images, straight.batches[iteration]), iteration
    # The augmentations are random: the two epochs crop the same images differently.
    assert not torch.equal(torch.cat([straight.batches[i] for i in range(5)]).sort(dim=0).values,
                           torch.cat([straight.batches[i] for i in range(5, 10)]).sort(dim=0).values)
