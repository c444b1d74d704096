"""Rank-aware samplers: each process of a distributed job reads its own part of the data."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler

from minirunner import dist
from minirunner.registry import DATA_SAMPLERS


def sync_random_seed() -> int:
    """A random seed in ``[0, 2**31)`` that is the same on every rank (rank 0's).

    Samplers built without a seed use it, so every rank shuffles the same way and the ranks'
    shares of the data do not overlap.
    """
    return dist.broadcast_object(random.randrange(2**31), src=0)


@DATA_SAMPLERS.register_module()
class DefaultSampler(Sampler[int]):
    """Gives each rank an equal, disjoint share of the dataset's indices, once per epoch.

    Indices are shuffled with a generator seeded by ``seed + epoch`` (call
    :meth:`set_epoch` before each epoch; the runner's ``DistSamplerSeedHook`` does), then
    rank ``r`` of ``w`` takes positions ``r, r + w, r + 2w, ...``, as torch's
    ``DistributedSampler`` does.

    Args:
        dataset: the dataset to sample from (only its length is used).
        shuffle: shuffle the indices each epoch; False keeps dataset order.
        seed: the shuffling seed; None draws a random one that all ranks share.
        round_up: repeat indices from the start of the list so every rank gets
            ``ceil(len(dataset) / world_size)`` of them (some samples are then seen twice
            per epoch); False gives the first ranks one index more than the last ones
            when the length does not divide evenly.

    Example:
        >>> sampler = DefaultSampler(list(range(5)), shuffle=False)
        >>> list(sampler)
        [0, 1, 2, 3, 4]
    """

    def __init__(
        self,
        dataset: Sized,
        shuffle: bool = True,
        seed: int | None = None,
        round_up: bool = True,
    ) -> None:
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.round_up = round_up
        self.epoch = 0
        self._start = 0
        size = len(dataset)
        if round_up:
            self.num_samples = math.ceil(size / self.world_size)
            self.total_size = self.num_samples * self.world_size
        else:
            self.num_samples = math.ceil(max(size - self.rank, 0) / self.world_size)
            self.total_size = size

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(size, generator=generator).tolist()
        else:
            indices = list(range(size))
        if self.round_up and self.total_size > size:
            repeats = math.ceil(self.total_size / size)
            indices = (indices * repeats)[: self.total_size]
        mine = indices[self.rank : self.total_size : self.world_size]
        start, self._start = self._start, 0
        return iter(mine[start:])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch``; the same epoch always gives the same order."""
        self.epoch = epoch

    def set_start_index(self, start: int) -> None:
        """Make the next iteration skip this rank's first ``start`` indices.

        For resuming in the middle of an epoch without loading the skipped samples; only
        the next iteration is affected (``len`` is unchanged).
        """
        self._start = int(start)


@DATA_SAMPLERS.register_module()
class InfiniteSampler(Sampler[int]):
    """An endless stream of indices for iteration-based training, split across ranks.

    One permutation of the dataset follows another (each drawn from a generator seeded
    once with ``seed``); rank ``r`` of ``w`` takes the stream's positions
    ``r, r + w, r + 2w, ...``. ``len`` is the dataset's length, for progress display.

    Args:
        dataset: the dataset to sample from (only its length is used).
        shuffle: shuffle each pass; False repeats ``0, 1, ..., len - 1``.
        seed: the shuffling seed; None draws a random one that all ranks share.

    Example:
        >>> import itertools
        >>> list(itertools.islice(InfiniteSampler(range(3), shuffle=False), 7))
        [0, 1, 2, 0, 1, 2, 0]
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None) -> None:
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.dataset = dataset
        self.size = len(dataset)
        if self.size == 0:
            raise ValueError("InfiniteSampler needs a non-empty dataset; this one has no samples")
        self.shuffle = shuffle
        self.seed = sync_random_seed() if seed is None else int(seed)
        self._start = 0

    def _stream(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=generator).tolist()
            else:
                yield from range(self.size)

    def __iter__(self) -> Iterator[int]:
        start, self._start = self._start, 0
        first = self.rank + start * self.world_size
        return itertools.islice(self._stream(), first, None, self.world_size)

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """Does nothing: the stream never ends, so there are no epochs to reseed."""

    def set_start_index(self, start: int) -> None:
        """Make the next iteration skip this rank's first ``start`` indices (for resuming)."""
        self._start = int(start)
