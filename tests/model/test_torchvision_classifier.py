"""TorchvisionClassifier where torchvision does not import: a clear error naming the extra.
The tests that build torchvision networks are in tests/vision/test_torchvision_classifier.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from minirunner.config import Config
from minirunner.registry import MODELS
from minirunner.utils import ConfigError


def test_without_torchvision_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.models", None)  # `import torchvision.models` fails
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[vision\]'"):
        MODELS.build(dict(type="TorchvisionClassifier", arch="resnet18"))


def test_the_cifar_config_loads_and_names_registered_types():
    cfg = Config.fromfile(Path(__file__).parents[2] / "configs" / "resnet18_cifar10.py")
    assert cfg.model.type == "TorchvisionClassifier"
    assert MODELS.get(cfg.model.type) is not None
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.train_dataloader.dataset.verify is True and cfg.train_dataloader.dataset.download is True
