"""Seeding of dataloader worker processes."""

from __future__ import annotations

import random

import torch


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    """Seed Python's, torch's and (when installed) NumPy's RNGs in a dataloader worker.

    Each worker of each rank gets its own seed, ``seed + worker_id + rank * num_workers``,
    so random augmentations differ between workers but repeat from run to run.
    :func:`~minirunner.dataset.build_dataloader` binds the last three arguments with
    ``functools.partial``.
    """
    worker_seed = seed + worker_id + rank * num_workers
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(worker_seed % 2**32)
