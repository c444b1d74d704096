"""Seeding of dataloader worker processes."""

from __future__ import annotations

import hashlib
import random
import signal

import torch
from torch.utils.data import get_worker_info

# Keeps the seeds of different epochs apart; an odd prime, so they do not line up with
# the worker and rank offsets.
_EPOCH_STRIDE = 100_003

# (seed, epoch) of the pass this process loads for; set only in worker processes.
_sample_seed_base: tuple[int, int] | None = None


def worker_init_fn(
    worker_id: int, num_workers: int, rank: int, seed: int, epoch: int = 0, seed_samples: bool = True
) -> None:
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

    With ``seed_samples`` (the default; off for persistent workers, which outlive the
    epoch), :func:`seed_sample` seeds each sample's transforms from (seed, epoch, index).

    Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the main process,
    which saves a checkpoint before it stops, still needs its workers until then.
    """
    global _sample_seed_base
    if get_worker_info() is not None:  # only in a worker process, never the caller's
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _sample_seed_base = (seed, epoch) if seed_samples else None
    worker_seed = seed + worker_id + rank * num_workers + epoch * _EPOCH_STRIDE
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)
    try:
        import numpy
    except ImportError:
        return
    numpy.random.seed(worker_seed % 2**32)


def seed_sample(index: int) -> None:
    """Seed Python's and torch's CPU RNGs for loading sample ``index``, in a dataloader worker.

    Datasets with random transforms call this first in ``__getitem__``. In a worker started
    with :func:`worker_init_fn` the seed comes from (seed, epoch, index), so a sample's
    augmentation does not depend on which worker loads it, or in what order: a run resumed
    mid-epoch, or with another ``num_workers``, draws the same augmentations. Elsewhere (no
    workers, or workers seeded by a user's ``worker_init_fn``) it does nothing: the main
    process draws from its own RNG stream, which checkpoints save and restore.
    """
    if _sample_seed_base is None:
        return
    seed, epoch = _sample_seed_base
    digest = hashlib.blake2b(f"{seed}/{epoch}/{index}".encode(), digest_size=8).digest()
    sample_seed = int.from_bytes(digest, "little")
    random.seed(sample_seed)
    torch.default_generator.manual_seed(sample_seed)
