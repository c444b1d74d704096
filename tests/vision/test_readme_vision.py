"""The vision page's config example (docs/vision.md, moved there from the README), run as written
(with the data pointed at generated files); the docs test skips it in the default environment."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from vision_support import write_cifar10

from minirunner.dataset import build_dataloader
from minirunner.registry import MODELS

VISION_PAGE = Path(__file__).parents[2] / "docs" / "vision.md"


def test_the_vision_page_config_builds_and_runs_a_batch(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", VISION_PAGE.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "type='TorchvisionClassifier'" in b]
    namespace: dict = {}
    exec(block, namespace)
    loader_cfg = namespace["train_dataloader"]
    loader_cfg["dataset"].update(data_root=str(write_cifar10(tmp_path, per_batch=2)), download=False, verify=False)
    loader_cfg.update(batch_size=4, num_workers=0)
    loader = build_dataloader(loader_cfg, seed=0)
    model = MODELS.build(namespace["model"])
    batch = next(iter(loader))
    assert batch["inputs"].shape == (4, 3, 32, 32) and batch["inputs"].dtype == torch.uint8
    loss = model(**model.data_preprocessor(batch, training=True), mode="loss")["loss"]
    assert torch.isfinite(loss)
