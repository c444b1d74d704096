"""torchvision wrappers: registered only where torchvision exists, trained on FakeData."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from minirunner.dataset import (
    TorchvisionDataset,
    build_dataloader,
    import_torchvision,
    torchvision_available,
)
from minirunner.model import MLPClassifier
from minirunner.registry import DATASETS


def test_registration_follows_whether_torchvision_is_installed():
    installed = importlib.util.find_spec("torchvision") is not None
    for name in ("CIFAR10", "MNIST", "FashionMNIST", "ImageFolder", "TorchvisionDataset"):
        assert (DATASETS.get(name) is not None) == installed


@pytest.mark.slow
def test_import_minirunner_dataset_does_not_import_torchvision():
    code = "import sys, minirunner.dataset; assert 'torchvision' not in sys.modules; print('OK')"
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_broken_torchvision_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(ImportError, match="torchvision cannot be imported"):
        import_torchvision()
    assert torchvision_available() is False
    with pytest.raises(ImportError, match=r"pip install -e '\.\[vision\]'"):
        TorchvisionDataset("FakeData")


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


@pytest.mark.skipif(not torchvision_available(), reason="torchvision does not import here")
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


@pytest.mark.skipif(not torchvision_available(), reason="torchvision does not import here")
def test_unknown_torchvision_names_are_config_errors():
    from minirunner.utils import ConfigError

    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeDat")
    assert info.value.key == "dataset_type" and "FakeData" in str(info.value)
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("FakeData", pipeline=[dict(type="RandomFlip")])
    assert info.value.key == "pipeline.0.type"


def test_wrapper_signatures_match_the_documented_ones():
    # Checked without torchvision: the configs depend on these argument names.
    import inspect

    from minirunner.dataset import CIFAR10, MNIST, FashionMNIST, ImageFolder

    for cls in (CIFAR10, MNIST, FashionMNIST):
        assert list(inspect.signature(cls).parameters) == ["data_root", "train", "download", "pipeline"]
    assert list(inspect.signature(ImageFolder).parameters) == ["data_root", "pipeline"]
    assert (CIFAR10.torchvision_name, MNIST.torchvision_name, FashionMNIST.torchvision_name) == (
        "CIFAR10", "MNIST", "FashionMNIST"
    )


def _stub_torchvision():
    """A stand-in with torchvision's shape, to exercise the wrapper logic where the real
    library cannot be imported."""
    import types

    class Compose:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, image):
            for step in self.steps:
                image = step(image)
            return image

    class AddOne:
        def __init__(self, amount=1):
            self.amount = amount

        def __call__(self, image):
            return image + self.amount

    class Sequence10:
        def __init__(self, root, train=True, download=False, transform=None):
            self.root, self.train, self.download, self.transform = root, train, download, transform

        def __len__(self):
            return 3

        def __getitem__(self, index):
            return self.transform(torch.full((1, 2, 2), float(index))), index * 10

    transforms = types.SimpleNamespace(Compose=Compose, PILToTensor=lambda: None, AddOne=AddOne)
    datasets = types.SimpleNamespace(CIFAR10=Sequence10, MNIST=Sequence10)
    return types.SimpleNamespace(transforms=transforms, datasets=datasets)


def test_wrapper_logic_with_a_stub_torchvision(monkeypatch):
    from minirunner.dataset import CIFAR10, MNIST
    from minirunner.dataset import vision
    from minirunner.utils import ConfigError

    monkeypatch.setattr(vision, "import_torchvision", _stub_torchvision)
    data = CIFAR10("/data", train=False, pipeline=[dict(type="AddOne", amount=2), dict(type="AddOne")])
    assert (data.dataset.root, data.dataset.train, data.dataset.download) == ("/data", False, False)
    assert len(data) == 3
    item = data[2]
    assert item["data_samples"] == 20
    assert torch.equal(item["inputs"], torch.full((1, 2, 2), 5.0))  # 2 + 2 + 1; no PIL step
    assert MNIST("/m").dataset.root == "/m"
    with pytest.raises(ConfigError) as info:
        CIFAR10("/data", pipeline=[dict(type="AddOn")])
    assert info.value.key == "pipeline.0.type" and "Did you mean 'AddOne'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        CIFAR10("/data", pipeline=[dict(type="AddOne", size=3)])
    assert info.value.key == "pipeline.0"
    with pytest.raises(ConfigError) as info:
        TorchvisionDataset("CIFAR100")
    assert info.value.key == "dataset_type"
