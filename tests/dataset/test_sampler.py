"""DefaultSampler and InfiniteSampler: partitions per rank, padding, seeds, epochs."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import DistributedSampler

import minirunner.dist
from minirunner.dataset import DefaultSampler, InfiniteSampler, sync_random_seed
from minirunner.registry import DATA_SAMPLERS


def as_rank(monkeypatch, rank: int, world_size: int, broadcast_value=None) -> None:
    """Pretend to be ``rank`` of ``world_size``; broadcasts return ``broadcast_value``."""
    monkeypatch.setattr(minirunner.dist, "get_rank", lambda: rank)
    monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: world_size)
    if broadcast_value is not None:
        monkeypatch.setattr(minirunner.dist, "broadcast_object", lambda obj, src=0: broadcast_value)


def test_registered():
    assert DATA_SAMPLERS.get("DefaultSampler") is DefaultSampler
    assert DATA_SAMPLERS.get("InfiniteSampler") is InfiniteSampler


def test_single_process_without_shuffle_is_dataset_order():
    sampler = DefaultSampler(range(7), shuffle=False)
    assert list(sampler) == list(range(7))
    assert len(sampler) == 7


def test_two_ranks_with_round_up_pad_from_the_start(monkeypatch):
    # 5 samples on 2 ranks: 3 each; the 6th position repeats index 0.
    as_rank(monkeypatch, 0, 2)
    rank0 = DefaultSampler(range(5), shuffle=False)
    as_rank(monkeypatch, 1, 2)
    rank1 = DefaultSampler(range(5), shuffle=False)
    assert list(rank0) == [0, 2, 4]
    assert list(rank1) == [1, 3, 0]
    assert len(rank0) == len(rank1) == 3


def test_two_ranks_without_round_up_share_exactly_once(monkeypatch):
    as_rank(monkeypatch, 0, 2)
    rank0 = DefaultSampler(range(5), shuffle=False, round_up=False)
    as_rank(monkeypatch, 1, 2)
    rank1 = DefaultSampler(range(5), shuffle=False, round_up=False)
    assert list(rank0) == [0, 2, 4] and len(rank0) == 3
    assert list(rank1) == [1, 3] and len(rank1) == 2


def test_padding_repeats_a_short_dataset_several_times(monkeypatch):
    # 2 samples on 5 ranks: the list 0,1 is repeated to 5 positions 0,1,0,1,0.
    got = []
    for rank in range(5):
        as_rank(monkeypatch, rank, 5)
        got.append(list(DefaultSampler(range(2), shuffle=False)))
    assert got == [[0], [1], [0], [1], [0]]


@pytest.mark.parametrize("size", [1, 6, 7, 11])
@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_matches_torch_distributed_sampler(monkeypatch, size, world_size, shuffle):
    dataset = list(range(size))
    for rank in range(world_size):
        as_rank(monkeypatch, rank, world_size)
        ours = DefaultSampler(dataset, shuffle=shuffle, seed=3)
        reference = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=3
        )
        for epoch in (0, 4):
            ours.set_epoch(epoch)
            reference.set_epoch(epoch)
            assert list(ours) == list(reference)
        assert len(ours) == len(reference)


def test_shuffle_is_randperm_of_seed_plus_epoch():
    sampler = DefaultSampler(range(10), shuffle=True, seed=7)
    for epoch in (0, 1, 5):
        sampler.set_epoch(epoch)
        expected = torch.randperm(10, generator=torch.Generator().manual_seed(7 + epoch))
        assert list(sampler) == expected.tolist()
        assert list(sampler) == expected.tolist()  # the same epoch repeats
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert sorted(first) == list(range(10))


def test_shuffle_ignores_the_global_rng():
    sampler = DefaultSampler(range(20), shuffle=True, seed=1)
    torch.manual_seed(0)
    first = list(sampler)
    torch.manual_seed(123)
    assert list(sampler) == first


def test_seed_none_uses_the_seed_broadcast_from_rank_zero(monkeypatch):
    as_rank(monkeypatch, 1, 2, broadcast_value=1234)
    sampler = DefaultSampler(range(6), shuffle=True)
    assert sampler.seed == 1234
    expected = torch.randperm(6, generator=torch.Generator().manual_seed(1234)).tolist()
    assert list(sampler) == expected[1::2]
    assert InfiniteSampler(range(6)).seed == 1234
    assert sync_random_seed() == 1234


def test_sync_random_seed_draws_a_fresh_seed_in_one_process():
    seeds = {sync_random_seed() for _ in range(5)}
    assert len(seeds) > 1
    assert all(0 <= seed < 2**31 for seed in seeds)


def test_set_start_index_skips_once():
    sampler = DefaultSampler(range(6), shuffle=True, seed=0)
    full = list(sampler)
    sampler.set_start_index(4)
    assert list(sampler) == full[4:]
    assert list(sampler) == full
    assert len(sampler) == 6


def test_infinite_sampler_repeats_permutations_from_one_generator():
    sampler = InfiniteSampler(range(4), shuffle=True, seed=5)
    generator = torch.Generator().manual_seed(5)
    expected = [i for _ in range(3) for i in torch.randperm(4, generator=generator).tolist()]
    assert list(itertools.islice(sampler, 12)) == expected
    assert len(sampler) == 4
    sampler.set_epoch(3)  # no effect: the stream is seeded once
    assert list(itertools.islice(sampler, 12)) == expected


def test_infinite_sampler_interleaves_ranks(monkeypatch):
    streams = []
    for rank in range(2):
        as_rank(monkeypatch, rank, 2)
        sampler = InfiniteSampler(range(3), shuffle=False)
        streams.append(list(itertools.islice(sampler, 5)))
    assert streams == [[0, 2, 1, 0, 2], [1, 0, 2, 1, 0]]


def test_infinite_sampler_start_index_skips_this_ranks_indices(monkeypatch):
    as_rank(monkeypatch, 1, 2)
    sampler = InfiniteSampler(range(5), shuffle=True, seed=2)
    full = list(itertools.islice(sampler, 10))
    sampler.set_start_index(3)
    assert list(itertools.islice(sampler, 7)) == full[3:]
    assert list(itertools.islice(sampler, 10)) == full


def test_infinite_sampler_needs_samples():
    with pytest.raises(ValueError, match="non-empty"):
        InfiniteSampler([])
