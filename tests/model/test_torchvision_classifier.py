"""TorchvisionClassifier: a clear error without torchvision; a working ResNet with it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from minirunner.config import Config
from minirunner.registry import MODELS
from minirunner.utils import ConfigError


def _torchvision_imports() -> bool:
    try:
        importlib.import_module("torchvision.models")
    except (ImportError, OSError, RuntimeError):
        return False
    return True


@pytest.mark.skipif(_torchvision_imports(), reason="torchvision imports here")
def test_without_torchvision_the_error_names_the_extra():
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[vision\]'"):
        MODELS.build(dict(type="TorchvisionClassifier", arch="resnet18"))


@pytest.mark.skipif(not _torchvision_imports(), reason="torchvision does not import here")
def test_resnet18_with_cifar_stem_keeps_32x32_resolution_and_predicts():
    model = MODELS.build(dict(type="TorchvisionClassifier", arch="resnet18", num_classes=10, cifar_stem=True))
    assert model.net.conv1.stride == (1, 1)
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    loss = model(torch.zeros(2, 3, 32, 32), torch.tensor([1, 2]), mode="loss")["loss"]
    assert loss.requires_grad


@pytest.mark.skipif(not _torchvision_imports(), reason="torchvision does not import here")
def test_unknown_arch_suggests_a_name():
    with pytest.raises(ConfigError, match="resnet18"):
        MODELS.build(dict(type="TorchvisionClassifier", arch="resnet81"))


def test_the_cifar_config_loads_and_names_registered_types():
    cfg = Config.fromfile(Path(__file__).parents[2] / "configs" / "resnet18_cifar10.py")
    assert cfg.model.type == "TorchvisionClassifier"
    assert MODELS.get(cfg.model.type) is not None
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
