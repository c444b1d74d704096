"""pin_memory: on by default when CUDA is used (batches then reach the GPU asynchronously)."""

from __future__ import annotations

import torch

from minirunner.dataset import build_dataloader


def _cfg(**overrides) -> dict:
    cfg = dict(dataset=dict(type="SyntheticClassification", num_samples=8), sampler=dict(type="DefaultSampler"), batch_size=4)
    cfg.update(overrides)
    return cfg


def test_pin_memory_follows_cuda_unless_set(monkeypatch):
    assert build_dataloader(_cfg()).pin_memory is torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert build_dataloader(_cfg()).pin_memory is True
    assert build_dataloader(_cfg(pin_memory=False)).pin_memory is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert build_dataloader(_cfg()).pin_memory is False
    assert build_dataloader(_cfg(pin_memory=True)).pin_memory is True
