"""torchvision's datasets through minirunner: FakeData trained on, ImageFolder on generated PNGs,
CIFAR-10 in its own pickled format (with and without the MD5 check), transforms by their
torchvision.transforms.v2 names, and augmentations seeded per sample in workers."""

from __future__ import annotations

import functools
import pickle
from contextlib import contextmanager

import pytest
import torch
from vision_support import write_cifar10

from minirunner.dataset import TorchvisionDataset, build_dataloader
from minirunner.model import MLPClassifier
from minirunner.registry import DATASETS
from minirunner.utils import ConfigError


class SketchOptimWrapper:
    def __init__(self, optimizer):
        self.optimizer = optimizer

    @contextmanager
    def optim_context(self, model):
        yield

    def update_params(self, loss):
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


def test_two_training_iterations_on_fake_data():
    loader = build_dataloader(
        dict(
            dataset=dict(
                type="TorchvisionDataset",
                dataset_type="FakeData",
                size=8,
                image_size=(3, 8, 8),
                num_classes=4,
                pipeline=[dict(type="RandomHorizontalFlip")],
            ),
            sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
            batch_size=4,
        )
    )
    batch = next(iter(loader))
    assert batch["inputs"].shape == (4, 3, 8, 8) and batch["inputs"].dtype == torch.uint8
    assert batch["data_samples"].shape == (4,)
    model = MLPClassifier(
        in_features=3 * 8 * 8,
        num_classes=4,
        data_preprocessor=dict(type="ImgDataPreprocessor", mean=[127.5] * 3, std=[127.5] * 3),
    )
    wrapper = SketchOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = [p.detach().clone() for p in model.parameters()]
    steps = 0
    for batch in loader:
        log_vars = model.train_step(batch, wrapper)
        assert torch.isfinite(log_vars["loss"])
        steps += 1
    assert steps == 2
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_unknown_torchvision_names_are_config_errors():
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeDat")
    assert info.value.key == "dataset_type" and "FakeData" in str(info.value)
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeData", pipeline=[dict(type="RandomHorizontalFlp")])
    assert info.value.key == "pipeline.0.type" and "RandomHorizontalFlip" in str(info.value)
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeData", pipeline=[dict(type="ToDtype", dtype="float33")])
    assert info.value.key == "pipeline.0.dtype"
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeData", pipeline=[dict(type="RandomCrop", sise=4)])
    assert info.value.key == "pipeline.0" and "sise" in str(info.value)


# ---------------------------------------------------------------- data from local files


def test_image_folder_reads_generated_pngs_as_uint8_tensors(tmp_path):
    from PIL import Image

    written = {}
    for label, name in enumerate(["cat", "dog"]):  # ImageFolder sorts the class folders
        (tmp_path / name).mkdir()
        for i in range(3):
            pixels = torch.randint(0, 256, (5, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(10 * label + i))
            Image.frombytes("RGB", (6, 5), bytes(pixels.flatten().tolist())).save(tmp_path / name / f"{i}.png")
            written[(name, i)] = (pixels.permute(2, 0, 1), label)
    data = DATASETS.build(dict(type="ImageFolder", data_root=str(tmp_path)))
    assert len(data) == 6
    for index, (path, _) in enumerate(data.dataset.samples):
        item = data[index]
        pixels, label = written[(path.split("/")[-2], int(path.split("/")[-1][0]))]
        assert item["inputs"].dtype == torch.uint8 and type(item["inputs"]) is torch.Tensor
        assert torch.equal(item["inputs"], pixels) and item["data_samples"] == label

    loader = build_dataloader(dict(
        dataset=dict(type="ImageFolder", data_root=str(tmp_path), pipeline=[dict(type="CenterCrop", size=4)]),
        sampler=dict(type="DefaultSampler", shuffle=False), batch_size=6))
    batch = next(iter(loader))
    assert batch["inputs"].shape == (6, 3, 4, 4) and batch["data_samples"].tolist() == [0, 0, 0, 1, 1, 1]


@pytest.fixture
def cifar(tmp_path):
    return write_cifar10(tmp_path, per_batch=4, test_size=6)


def test_cifar10_in_its_own_format_loads_without_the_md5_check(cifar):
    train = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), verify=False))
    test = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), train=False, verify=False))
    assert (len(train), len(test)) == (20, 6)
    with open(cifar / "cifar-10-batches-py" / "data_batch_2", "rb") as handle:
        entry = pickle.load(handle)
    item = train[5]  # the second image of data_batch_2
    assert torch.equal(item["inputs"], torch.from_numpy(entry["data"][1]).reshape(3, 32, 32))
    assert item["data_samples"] == entry["labels"][1] == 1
    assert test.dataset.classes[3] == "cat"  # read from batches.meta by torchvision


def test_cifar10_verify_checks_md5_and_names_the_fix(cifar):
    with pytest.raises(ConfigError) as info:
        DATASETS.build(dict(type="CIFAR10", data_root=str(cifar)))
    assert "data_root" in str(info.value) and "verify=False" in str(info.value)
    # verify=False skips only the MD5 check: a missing file is still an error.
    (cifar / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(ConfigError) as info:
        DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), verify=False))
    assert "not found" in str(info.value) and "verify=False" not in str(info.value)


def test_a_pipeline_by_name_is_torchvisions_v2_pipeline(cifar, torchvision):
    from torchvision.transforms import v2

    names = [
        dict(type="RandomCrop", size=32, padding=4),
        dict(type="RandomHorizontalFlip"),
        dict(type="ToImage"),
        dict(type="ToDtype", dtype="float32", scale=True),
        dict(type="Normalize", mean=[0.5] * 3, std=[0.25] * 3),
    ]
    data = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), verify=False, pipeline=names))
    by_hand = v2.Compose([
        v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.25] * 3),
    ])
    plain = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), verify=False))
    for index in range(6):
        torch.manual_seed(index)
        ours = data[index]["inputs"]
        torch.manual_seed(index)
        expected = by_hand(v2.functional.to_pil_image(plain[index]["inputs"]))
        assert type(ours) is torch.Tensor and ours.dtype == torch.float32
        assert torch.equal(ours, expected.as_subclass(torch.Tensor))


def _augmented_batches(cifar, num_workers: int, seed: int, epoch: int = 0) -> list[torch.Tensor]:
    from minirunner.dataset import worker_init_fn

    loader = build_dataloader(
        dict(
            dataset=dict(type="CIFAR10", data_root=str(cifar), verify=False, pipeline=[
                dict(type="RandomResizedCrop", size=16), dict(type="RandomHorizontalFlip")]),
            # The same order in every epoch: batches differ only by their augmentation.
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=4,
            num_workers=num_workers,
        ),
        seed=seed,
    )
    loader.sampler.set_epoch(epoch)
    if num_workers:  # as the training loop does before each pass
        loader.worker_init_fn = functools.partial(loader.worker_init_fn, epoch=epoch)
        assert loader.worker_init_fn.func is worker_init_fn
    return [batch["inputs"] for batch in loader]


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_augmentations_in_workers_depend_on_seed_epoch_and_index_only(cifar):
    one = _augmented_batches(cifar, num_workers=1, seed=3)
    two = _augmented_batches(cifar, num_workers=2, seed=3)
    # Which worker loads a sample does not change its augmentation.
    assert all(torch.equal(a, b) for a, b in zip(one, two)) and len(one) == 5
    other_seed = _augmented_batches(cifar, num_workers=2, seed=4)
    next_epoch = _augmented_batches(cifar, num_workers=2, seed=3, epoch=1)
    assert not any(torch.equal(a, b) for a, b in zip(two, other_seed))
    assert not any(torch.equal(a, b) for a, b in zip(two, next_epoch))
