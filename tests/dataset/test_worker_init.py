"""Seeded dataloader workers."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import Dataset

from minirunner.dataset import build_dataloader, worker_init_fn


def test_worker_init_fn_seeds_python_and_torch():
    # seed + worker_id + rank * num_workers = 100 + 1 + 2 * 4 = 109
    worker_init_fn(1, num_workers=4, rank=2, seed=100)
    got = (random.random(), torch.rand(1).item())
    random.seed(109)
    torch.manual_seed(109)
    assert got == (random.random(), torch.rand(1).item())


class RandomValues(Dataset):
    """Each item is a draw from the worker's torch and Python RNGs."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        return torch.tensor([torch.rand(1).item(), random.random()])


def _draws(seed: int) -> torch.Tensor:
    loader = build_dataloader(
        dict(
            dataset=RandomValues(),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=1,
            num_workers=2,
        ),
        seed=seed,
    )
    return torch.cat(list(loader))


@pytest.mark.multiprocess
def test_workers_are_seeded_from_the_run_seed():
    first = _draws(seed=7)
    assert torch.equal(first, _draws(seed=7))
    assert not torch.equal(first, _draws(seed=8))
    # Batch i comes from worker i % 2; worker w's first draw follows seed 7 + w.
    for worker in range(2):
        torch.manual_seed(7 + worker)
        random.seed(7 + worker)
        expected = torch.tensor([[torch.rand(1).item(), random.random()]])
        assert torch.equal(first[worker : worker + 1], expected)
