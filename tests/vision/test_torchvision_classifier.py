"""TorchvisionClassifier with real torchvision networks: any classification model by name, the
CIFAR stem, pretrained weights from torch's hub cache with a new head for another number of
classes, and one clear line when weights cannot be fetched."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vision_support import write_cifar10

from minirunner.registry import MODELS
from minirunner.utils import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_resnet18_with_cifar_stem_keeps_32x32_resolution_and_predicts():
    model = MODELS.build(dict(type="TorchvisionClassifier", arch="resnet18", num_classes=10, cifar_stem=True))
    assert model.net.conv1.stride == (1, 1)
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    loss = model(torch.zeros(2, 3, 32, 32), torch.tensor([1, 2]), mode="loss")["loss"]
    assert loss.requires_grad


@pytest.mark.parametrize("arch", ["mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0"])
def test_any_classification_model_by_name(arch):
    model = MODELS.build(dict(type="TorchvisionClassifier", arch=arch, num_classes=7))
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


@pytest.mark.parametrize(("arch", "suggestion"), [("resnet81", "resnet18"), ("fasterrcnn_resnet50_fpn", "")])
def test_names_that_are_not_classification_models(arch, suggestion):
    with pytest.raises(ConfigError) as info:
        MODELS.build(dict(type="TorchvisionClassifier", arch=arch))
    assert "arch" in str(info.value) and "not a torchvision classification model" in str(info.value)
    assert suggestion in str(info.value)


def test_unknown_weights_name_the_choices():
    with pytest.raises(ConfigError) as info:
        MODELS.build(dict(type="TorchvisionClassifier", arch="resnet18", weights="IMAGENET1K_V3"))
    assert "weights" in str(info.value) and "'IMAGENET1K_V1'" in str(info.value)


def _cache_weights(torch_home: Path, arch: str, seed: int) -> dict[str, torch.Tensor]:
    """Put a state dict for ``arch`` where torchvision looks for its IMAGENET1K_V1 file."""
    from torchvision import models

    weights = models.get_model_weights(arch).IMAGENET1K_V1
    torch.manual_seed(seed)
    state = models.get_model(arch).state_dict()
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / os.path.basename(weights.url))
    return state


@pytest.mark.parametrize(("arch", "head"), [("resnet18", "fc"), ("squeezenet1_1", "classifier.1")])
def test_pretrained_weights_keep_the_backbone_and_replace_the_head(tmp_path, monkeypatch, caplog, arch, head):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    state = _cache_weights(tmp_path, arch, seed=3)
    logger = logging.getLogger("minirunner")
    logger.addHandler(caplog.handler)
    try:
        model = MODELS.build(dict(type="TorchvisionClassifier", arch=arch, num_classes=10, weights="IMAGENET1K_V1"))
    finally:
        logger.removeHandler(caplog.handler)
    loaded = model.net.state_dict()
    for name, value in state.items():
        if name.startswith(head + "."):
            assert loaded[name].shape[0] == 10 and value.shape[0] == 1000
        else:
            assert torch.equal(loaded[name], value), name
    assert f"its last layer '{head}' (1000 classes) is replaced by a new one with 10 outputs" in caplog.text

    same = MODELS.build(dict(type="TorchvisionClassifier", arch=arch, num_classes=1000, weights="IMAGENET1K_V1"))
    assert all(torch.equal(same.net.state_dict()[name], value) for name, value in state.items())


@pytest.mark.slow
def test_weights_that_cannot_be_fetched_give_one_clear_line(tmp_path):
    cifar = write_cifar10(tmp_path / "cifar", per_batch=1, test_size=1)
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch_home"))
    # Nothing listens on port 9: the download fails at once, as it does offline.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = "http://127.0.0.1:9"
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    run = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), str(REPO / "configs" / "resnet18_cifar10.py"),
         "--work-dir", str(tmp_path / "work"), "--cfg-options", "model.weights=IMAGENET1K_V1",
         f"train_dataloader.dataset.data_root={cifar}", "train_dataloader.dataset.verify=False"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]  # torch prints "Downloading: ..." first
    assert last.startswith("config error: model.weights: ") and "resnet18-f37072fd.pth" in last
    assert "hub/checkpoints" in last and "weights=None" in last
