"""Batched fetch: ``__getitems__`` of the built-in datasets and how build_dataloader uses it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Subset, default_collate

from minirunner.dataset import (
    DigitsDataset,
    InMemoryDataset,
    SyntheticClassification,
    build_dataloader,
    collate_batched,
    pseudo_collate,
)
from minirunner.registry import DATASETS
from minirunner.utils import ConfigError


def _datasets():
    labels = torch.arange(7) % 3
    return [
        SyntheticClassification(num_samples=11, num_features=3, num_classes=4),
        DigitsDataset("val"),
        InMemoryDataset(dict(inputs=torch.randn(7, 2, 2), data_samples=labels, weight=torch.rand(7))),
    ]


def _assert_same_batch(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key


def _per_sample_batches(loader) -> list:
    """What the loader yields when every sample is fetched alone and default-collated."""
    dataset = loader.dataset
    return [default_collate([dataset[i] for i in indices]) for indices in loader.batch_sampler]


@pytest.mark.parametrize("dataset", _datasets(), ids=lambda d: type(d).__name__)
def test_getitems_is_the_default_collate_of_the_samples(dataset):
    indices = [5, 0, 3, 3, 6]
    _assert_same_batch(dataset.__getitems__(indices).collated, default_collate([dataset[i] for i in indices]))
    # One index still gives one sample.
    sample = dataset[2]
    assert sample["inputs"].shape == dataset.__getitems__([2]).collated["inputs"].shape[1:]


@pytest.mark.parametrize("dataset", _datasets(), ids=lambda d: type(d).__name__)
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_batches_equal_the_per_sample_path_in_order(dataset, drop_last):
    loader = build_dataloader(dict(
        dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=True, seed=3), batch_size=4,
        drop_last=drop_last,
    ))
    assert loader.collate_fn is collate_batched
    for epoch in (0, 1):  # the sampler reshuffles per epoch; both paths follow it
        loader.sampler.set_epoch(epoch)
        want = _per_sample_batches(loader)
        got = list(loader)
        assert len(got) == len(want) == len(loader)
        for batch, expected in zip(got, want):
            _assert_same_batch(batch, expected)


class _CountingData(SyntheticClassification):
    """Counts the calls of each kind of fetch."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls = {"one": 0, "batch": 0}

    def __getitems__(self, indices):
        self.calls["batch"] += 1
        return super().__getitems__(indices)


def test_each_batch_is_one_fetch():
    dataset = _CountingData(num_samples=10, num_features=2)
    loader = build_dataloader(dict(dataset=dataset, sampler=dict(type="DefaultSampler"), batch_size=4))
    assert len(list(loader)) == 3
    assert dataset.calls["batch"] == 3


class _Augmented(SyntheticClassification):
    """A subclass that changes what one sample is, and only that."""

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return dict(inputs=item["inputs"] + 100, data_samples=item["data_samples"])


def test_a_subclass_that_redefines_a_sample_is_fetched_sample_by_sample():
    dataset = _Augmented(num_samples=6, num_features=2)
    loader = build_dataloader(dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=4))
    batch = next(iter(loader))
    assert torch.equal(batch["inputs"], dataset.inputs[:4] + 100)
    assert torch.equal(batch["data_samples"], dataset.labels[:4])


def test_a_configured_collate_fn_gets_the_samples_one_by_one():
    dataset = SyntheticClassification(num_samples=6, num_features=2)
    loader = build_dataloader(dict(
        dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=4,
        collate_fn=dict(type="pseudo_collate"),
    ))
    assert loader.collate_fn is pseudo_collate
    batch = next(iter(loader))
    assert isinstance(batch["inputs"], list) and len(batch["inputs"]) == 4
    assert all(torch.equal(row, dataset.inputs[i]) for i, row in enumerate(batch["inputs"]))
    # The loader reads the same data; the dataset given keeps its batched fetch.
    assert type(loader.dataset) is SyntheticClassification and loader.dataset.inputs is dataset.inputs
    assert callable(dataset.__getitems__)


def test_an_explicit_default_collate_uses_the_batched_fetch():
    dataset = _CountingData(num_samples=6, num_features=2)
    loader = build_dataloader(dict(
        dataset=dataset, sampler=dict(type="DefaultSampler"), batch_size=3, collate_fn=dict(type="default_collate"),
    ))
    assert loader.collate_fn is collate_batched and loader.dataset is dataset
    assert len(list(loader)) == 2 and dataset.calls["batch"] == 2


def test_a_list_of_samples_from_getitems_is_collated():
    # torch's Subset has __getitems__; over a dataset without one it returns a list of samples.
    samples = [dict(inputs=torch.full((2,), float(i)), data_samples=torch.tensor(i)) for i in range(5)]
    loader = build_dataloader(dict(
        dataset=Subset(samples, [4, 1, 3]), sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2,
    ))
    assert loader.collate_fn is collate_batched
    batches = list(loader)
    assert torch.equal(batches[0]["data_samples"], torch.tensor([4, 1]))
    assert torch.equal(batches[1]["inputs"], torch.full((1, 2), 3.0))


def test_in_memory_dataset_from_a_file_and_a_config(tmp_path):
    inputs, labels = torch.randn(5, 3), torch.tensor([0, 1, 0, 1, 1])
    torch.save(dict(inputs=inputs, data_samples=labels), tmp_path / "train.pt")
    dataset = DATASETS.build(dict(
        type="InMemoryDataset", file=str(tmp_path / "train.pt"), metainfo=dict(classes=("a", "b")),
    ))
    assert len(dataset) == 5 and dataset.metainfo == {"classes": ("a", "b")}
    assert torch.equal(dataset[3]["inputs"], inputs[3])
    _assert_same_batch(dataset.__getitems__([4, 0]).collated, dict(inputs=inputs[[4, 0]], data_samples=labels[[4, 0]]))


@pytest.mark.parametrize(
    "kwargs, key, words",
    [
        (dict(), "file", "either data"),
        (dict(data=dict(x=torch.zeros(2)), file="x.pt"), "data", "not both"),
        (dict(data=dict()), "data", "non-empty dict"),
        (dict(data=dict(x=[1, 2])), "data", "field 'x' must be a tensor"),
        (dict(data=dict(x=torch.tensor(1.0))), "data", "first dimension"),
        (dict(data=dict(x=torch.zeros(3), y=torch.zeros(4))), "data", "same number of samples"),
        (dict(file="no/such/file.pt"), "file", "is not a file"),
    ],
)
def test_in_memory_dataset_errors_name_the_key_and_the_fix(kwargs, key, words):
    with pytest.raises(ConfigError) as info:
        InMemoryDataset(**kwargs)
    assert info.value.key == key and words in str(info.value)


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_workers_yield_the_same_batches_as_the_main_process():
    dataset = SyntheticClassification(num_samples=21, num_features=3)
    cfg = dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=True, seed=5), batch_size=4)
    in_main = list(build_dataloader(cfg))
    in_workers = list(build_dataloader(dict(cfg, num_workers=2)))
    assert len(in_main) == len(in_workers) == 6
    for got, want in zip(in_workers, in_main):
        _assert_same_batch(got, want)


@pytest.mark.parametrize("dataset", _datasets(), ids=lambda d: type(d).__name__)
def test_a_dataloader_built_by_hand_with_torchs_default_collate_still_works(dataset):
    # torch calls __getitems__ and hands its result to default_collate: the batch must still
    # read as its samples, and collate to the same batch as the per-sample path.
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=False)
    batch = next(iter(loader))
    _assert_same_batch(batch, default_collate([dataset[i] for i in range(4)]))
    fetched = dataset.__getitems__([3, 1])
    assert len(fetched) == 2 and torch.equal(fetched[-1]["inputs"], dataset[1]["inputs"])
    assert [torch.equal(s["inputs"], dataset[i]["inputs"]) for s, i in zip(fetched[:], [3, 1])] == [True, True]
    with pytest.raises(IndexError):
        fetched[2]
