"""Seeding of dataloader worker processes."""

from __future__ import annotations

import random
import signal

import torch
from torch.utils.data import get_worker_info

# Keeps the seeds of different epochs apart; an odd prime, so they do not line up with
# the worker and rank offsets.
_EPOCH_STRIDE = 100_003


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int, epoch: int = 0) -> None:
    """Seed Python's, torch's and (when installed) NumPy's RNGs in a dataloader worker.

    Each worker of each rank gets its own seed,
    ``seed + worker_id + rank * num_workers + epoch * 100003``, so random augmentations
    differ between workers and epochs but repeat from run to run, and a run resumed in
    epoch ``e`` starts its workers as the uninterrupted run did. The seed does not depend
    on the DataLoader's own random ``base_seed``. The training loops fill in ``epoch``
    before each pass (workers restart with each pass unless ``persistent_workers``, whose
    workers keep the seeds of the epoch they started in).
    :func:`~minirunner.dataset.build_dataloader` binds ``num_workers``, ``rank`` and
    ``seed`` with ``functools.partial``.

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the main process,
    which saves a checkpoint before it stops, still needs its workers until then.
    """
    if get_worker_info() is not None:  # only in a worker process, never the caller's
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker_seed = seed + worker_id + rank * num_workers + epoch * _EPOCH_STRIDE
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(worker_seed % 2**32)
