"""torchvision datasets without torchvision: registered only where it is installed, a clear
error where it does not import, the documented signatures. The tests that use torchvision are
in tests/vision/test_datasets.py."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from minirunner.dataset import (
    TorchvisionDataset,
    import_torchvision,
    torchvision_available,
)
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


def test_wrapper_signatures_match_the_documented_ones():
    # Checked without torchvision: the configs depend on these argument names.
    import inspect

    from minirunner.dataset import CIFAR10, MNIST, FashionMNIST, ImageFolder

    assert list(inspect.signature(CIFAR10).parameters) == ["data_root", "train", "download", "pipeline", "verify"]
    assert inspect.signature(CIFAR10).parameters["verify"].default is True
    for cls in (MNIST, FashionMNIST):
        assert list(inspect.signature(cls).parameters) == ["data_root", "train", "download", "pipeline"]
    assert list(inspect.signature(ImageFolder).parameters) == ["data_root", "pipeline"]
    assert (CIFAR10.torchvision_name, MNIST.torchvision_name, FashionMNIST.torchvision_name) == (
        "CIFAR10", "MNIST", "FashionMNIST"
    )
