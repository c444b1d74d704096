"""build_dataloader: every config key, and the ConfigErrors a config author can fix."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

import minirunner.dist
from minirunner.dataset import (
    DefaultSampler,
    SyntheticClassification,
    build_dataloader,
    collate_batched,
    pseudo_collate,
    worker_init_fn,
)
from minirunner.dataset.builder import why_no_batches
from minirunner.registry import DATA_SAMPLERS, FUNCTIONS, config_key
from minirunner.utils import ConfigError


def _cfg(**overrides):
    cfg = dict(
        dataset=dict(type="SyntheticClassification", num_samples=10, num_features=3),
        sampler=dict(type="DefaultSampler", shuffle=False),
        batch_size=4,
    )
    cfg.update(overrides)
    return cfg


def _error(cfg, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info, config_key("train_dataloader"):
        build_dataloader(cfg, **kwargs)
    return info.value


def test_builds_a_dataloader_with_defaults():
    cfg = _cfg()
    loader = build_dataloader(cfg)
    assert isinstance(loader, DataLoader)
    assert isinstance(loader.sampler, DefaultSampler) and not loader.sampler.shuffle
    assert isinstance(loader.dataset, SyntheticClassification)
    # The dataset fetches whole batches (__getitems__), which the default collate passes on.
    assert loader.collate_fn is collate_batched
    assert (loader.batch_size, loader.num_workers, loader.drop_last) == (4, 0, False)
    assert loader.pin_memory is False and loader.persistent_workers is False
    assert loader.worker_init_fn is None
    batches = list(loader)
    assert [b["inputs"].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    expected = SyntheticClassification(num_samples=10, num_features=3)
    assert torch.equal(torch.cat([b["inputs"] for b in batches]), expected.inputs)
    assert torch.equal(torch.cat([b["data_samples"] for b in batches]), expected.labels)
    assert cfg == _cfg()  # the caller's dict is not changed


def test_passes_options_through():
    loader = build_dataloader(
        _cfg(
            num_workers=1,
            persistent_workers=True,
            drop_last=True,
            collate_fn=dict(type="pseudo_collate"),
            prefetch_factor=3,
            timeout=5,
        ),
        seed=11,
    )
    assert (loader.num_workers, loader.persistent_workers, loader.drop_last) == (1, True, True)
    assert (loader.prefetch_factor, loader.timeout) == (3, 5)
    assert loader.collate_fn is pseudo_collate
    assert isinstance(loader.worker_init_fn, functools.partial)
    assert loader.worker_init_fn.func is worker_init_fn
    assert loader.worker_init_fn.keywords == dict(num_workers=1, rank=0, seed=11, seed_samples=False)
    assert len(loader) == 2


class _OneByOne(torch.utils.data.Dataset):
    """A dataset without ``__getitems__``, as most are."""

    def __init__(self, size: int) -> None:
        self.values = torch.arange(size)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.values[index]


def test_accepts_objects_and_returns_a_dataloader_unchanged():
    dataset = _OneByOne(6)
    sampler = DefaultSampler(dataset, shuffle=False)
    loader = build_dataloader(dict(dataset=dataset, sampler=sampler, batch_size=3, collate_fn=pseudo_collate))
    assert loader.dataset is dataset and loader.sampler is sampler
    assert loader.collate_fn is pseudo_collate
    assert build_dataloader(loader) is loader
    # A dataset that fetches whole batches is used as given with the default collate.
    batched = SyntheticClassification(num_samples=6, num_features=2)
    assert build_dataloader(dict(dataset=batched, sampler=sampler, batch_size=3)).dataset is batched


def test_seed_reaches_the_sampler_unless_ranks_have_different_seeds():
    cfg = _cfg(sampler=dict(type="DefaultSampler", shuffle=True))
    assert build_dataloader(cfg, seed=5).sampler.seed == 5
    assert build_dataloader(_cfg(sampler=dict(type="DefaultSampler", seed=9)), seed=5).sampler.seed == 9


def test_diff_rank_seed_gives_the_sampler_the_shared_seed(monkeypatch):
    monkeypatch.setattr(minirunner.dist, "broadcast_object", lambda obj, src=0: 77)
    loader = build_dataloader(_cfg(sampler=dict(type="DefaultSampler")), seed=5, diff_rank_seed=True)
    assert loader.sampler.seed == 77


def test_rank_goes_into_the_worker_seed(monkeypatch):
    monkeypatch.setattr(minirunner.dist, "get_rank", lambda: 3)
    monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: 4)
    loader = build_dataloader(_cfg(num_workers=2), seed=1)
    assert loader.worker_init_fn.keywords == dict(num_workers=2, rank=3, seed=1)
    assert len(loader.sampler) == 3  # ceil(10 / 4)


class FixedOrder(Sampler):
    """A user sampler without a seed argument."""

    def __init__(self, dataset, order):
        self.order = order

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)


def test_user_sampler_without_seed_and_batch_sampler():
    DATA_SAMPLERS.register_module(module=FixedOrder, force=True)
    DATA_SAMPLERS.register_module(module=BatchSampler, force=True)
    try:
        loader = build_dataloader(
            _cfg(
                sampler=dict(type="FixedOrder", order=[3, 1, 2]),
                batch_sampler=dict(type="BatchSampler", drop_last=False),
                batch_size=2,
            ),
            seed=1,
        )
        labels = SyntheticClassification(num_samples=10, num_features=3).labels
        assert [b["data_samples"].tolist() for b in loader] == [
            labels[[3, 1]].tolist(), labels[[2]].tolist()
        ]
    finally:
        DATA_SAMPLERS.module_dict.pop("FixedOrder")
        DATA_SAMPLERS.module_dict.pop("BatchSampler")


def test_collate_fn_with_arguments_is_a_partial():
    def stack_scaled(batch, scale=1.0):
        return torch.stack([item["inputs"] for item in batch]) * scale

    FUNCTIONS.register_module(module=stack_scaled, force=True)
    try:
        loader = build_dataloader(_cfg(collate_fn=dict(type="stack_scaled", scale=2.0)))
        first = next(iter(loader))
        expected = SyntheticClassification(num_samples=10, num_features=3).inputs[:4] * 2
        assert torch.equal(first, expected)
        error = _error(_cfg(collate_fn=dict(type="stack_scaled", factor=2.0)))
        assert error.key == "train_dataloader.collate_fn.factor"
    finally:
        FUNCTIONS.module_dict.pop("stack_scaled")


@pytest.mark.parametrize(
    ("overrides", "key", "text"),
    [
        (dict(batch_size=0), "train_dataloader.batch_size", "positive int"),
        (dict(batch_size=2.5), "train_dataloader.batch_size", "positive int"),
        (dict(num_workers=-1), "train_dataloader.num_workers", ">= 0"),
        (dict(persistent_workers=True), "train_dataloader.persistent_workers", "num_workers"),
        (dict(shuffle=True), "train_dataloader.shuffle", "sampler=dict"),
        (dict(batchsize=4), "train_dataloader.batchsize", "Did you mean 'batch_size'"),
        (dict(sampler=dict(type="DefaultSamplr")), "train_dataloader.sampler.type",
         "Did you mean 'DefaultSampler'"),
        (dict(sampler=dict(type="DefaultSampler", shufle=True)), "train_dataloader.sampler.shufle",
         "Did you mean 'shuffle'"),
        (dict(dataset=dict(type="DigitDataset")), "train_dataloader.dataset.type",
         "Did you mean 'DigitsDataset'"),
        (dict(dataset=dict(type="DigitsDataset", split="test")), "train_dataloader.dataset.split",
         "'train' or 'val'"),
        (dict(collate_fn=dict(type="default_colate")), "train_dataloader.collate_fn.type",
         "Did you mean 'default_collate'"),
        (dict(collate_fn="default_collate"), "train_dataloader.collate_fn", "dict"),
        (dict(prefetch_factor=2), "train_dataloader.prefetch_factor", "num_workers"),
    ],
)
def test_config_errors_name_the_key(overrides, key, text):
    error = _error(_cfg(**overrides))
    assert error.key == key
    assert text in str(error)


@pytest.mark.parametrize("missing", ["dataset", "sampler", "batch_size"])
def test_missing_required_keys(missing):
    cfg = _cfg()
    del cfg[missing]
    error = _error(cfg)
    assert error.key == f"train_dataloader.{missing}"
    assert "is missing" in str(error)


def test_not_a_dict():
    error = _error([1, 2])
    assert error.key == "train_dataloader"


def test_no_batch_is_explained_not_warned(caplog):
    # The loops raise a ConfigError naming their dataloader key; the builder stays quiet, so
    # tools/train.py prints that one line and nothing before it.
    with caplog.at_level(logging.WARNING, logger="minirunner"):
        loader = build_dataloader(_cfg(batch_size=16, drop_last=True))
    assert not caplog.records
    assert why_no_batches(loader) == (
        "its dataset has 10 samples, fewer than batch_size=16, and drop_last=True drops the "
        "incomplete batch, so it yields no batch; set batch_size to 10 or less, or drop_last=False"
    )


def test_why_no_batches_is_none_when_batches_come():
    assert why_no_batches(build_dataloader(_cfg(batch_size=16))) is None  # one short batch
    assert why_no_batches(build_dataloader(_cfg(batch_size=10, drop_last=True))) is None


def test_why_no_batches_for_an_empty_dataset():
    problem = why_no_batches(build_dataloader(_cfg(dataset=[])))
    assert problem.startswith("its dataset (list) is empty, so it yields no batch; ")


def test_why_no_batches_counts_per_process(monkeypatch):
    # 10 samples over 4 processes: DefaultSampler gives each 3 (rounded up), and batch_size
    # is per process, so the fix is batch_size <= 3, not <= 10.
    monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: 4)
    problem = why_no_batches(build_dataloader(_cfg(batch_size=4, drop_last=True)))
    assert problem.startswith(
        "its dataset has 10 samples, 3 per process over 4 processes, fewer than batch_size=4 "
        "(a per-process size), and drop_last=True"
    )
    assert problem.endswith("set batch_size to 3 or less, or drop_last=False")


def test_why_no_batches_names_a_sampler_that_gives_nothing(monkeypatch):
    monkeypatch.setattr(minirunner.dist, "get_rank", lambda: 3)
    monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: 4)
    cfg = _cfg(dataset=dict(type="SyntheticClassification", num_samples=3, num_features=3),
               sampler=dict(type="DefaultSampler", shuffle=False, round_up=False))
    problem = why_no_batches(build_dataloader(cfg))
    assert problem.startswith("its sampler (DefaultSampler) gives this process none of the dataset's 3 samples")


def test_why_no_batches_trusts_infinite_samplers_and_unsized_data():
    # One pass of 10 samples is shorter than a batch, but the stream goes on: batches come.
    loader = build_dataloader(_cfg(sampler=dict(type="InfiniteSampler"), batch_size=16, drop_last=True))
    assert len(loader) == 0 and why_no_batches(loader) is None
    assert next(iter(loader))["inputs"].shape[0] == 16

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter([])

    assert why_no_batches(DataLoader(Stream(), batch_size=2)) is None


def test_option_errors_come_before_building_the_dataset():
    built = []

    def dataset_factory():
        built.append(True)
        return SyntheticClassification(num_samples=4)

    from minirunner.registry import DATASETS

    DATASETS.register_module(module=dataset_factory, name="CountingDataset", force=True)
    try:
        _error(_cfg(dataset=dict(type="CountingDataset"), batch_size=0))
        _error(_cfg(dataset=dict(type="CountingDataset"), collate_fn=dict(type="nope")))
        assert built == []
    finally:
        DATASETS.module_dict.pop("CountingDataset")
