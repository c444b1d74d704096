"""ConcatDataset, RepeatDataset and ClassBalancedDataset as MMEngine documents them."""

from __future__ import annotations

import math

import pytest

from minirunner.dataset import BaseDataset, ClassBalancedDataset, ConcatDataset, RepeatDataset
from minirunner.registry import DATASETS


@DATASETS.register_module(name="_WrapperToyDataset", force=True)
class ToyDataset(BaseDataset):
    """Samples 0..n-1 (offset by `start`); sample i has the categories `cats[i]`."""

    METAINFO = dict(classes=("a", "b", "c"))

    def __init__(self, n=4, start=0, cats=None, **kwargs):
        self.n, self.start = n, start
        self.cats = cats or [[i % 3] for i in range(n)]
        super().__init__(**kwargs)

    def load_data_list(self):
        return [dict(value=self.start + i, cats=self.cats[i]) for i in range(self.n)]

    def get_cat_ids(self, idx):
        return self.get_data_info(idx)["cats"]


def test_concat_indexes_across_datasets_and_builds_configs():
    data = ConcatDataset([ToyDataset(n=2), dict(type="_WrapperToyDataset", n=3, start=10)])
    assert len(data) == 5
    assert [data[i]["value"] for i in range(5)] == [0, 1, 10, 11, 12]
    assert data[-1]["value"] == 12 and data.get_data_info(2)["value"] == 10
    assert data._get_ori_dataset_idx(3) == (1, 1)
    assert data.metainfo == dict(classes=("a", "b", "c"))
    with pytest.raises(ValueError):
        data._get_ori_dataset_idx(-6)


def test_concat_checks_metainfo_unless_ignored():
    other = ToyDataset(metainfo=dict(classes=("x",)))
    with pytest.raises(ValueError, match="classes"):
        ConcatDataset([ToyDataset(), other])
    data = ConcatDataset([ToyDataset(), other], ignore_keys="classes")
    assert data.metainfo["classes"] == ("a", "b", "c")
    with pytest.raises(TypeError):
        ConcatDataset([ToyDataset(), ToyDataset(metainfo=dict(classes=["a", "b", "c"]))])
    with pytest.raises(ValueError, match="extra"):
        ConcatDataset([ToyDataset(), ToyDataset(metainfo=dict(extra=1))])
    with pytest.raises(TypeError):
        ConcatDataset([ToyDataset()], ignore_keys=3)
    with pytest.raises(TypeError):
        ConcatDataset([ToyDataset(), 5])


def test_lazy_init_of_wrappers():
    inner = ToyDataset(n=3, lazy_init=True)
    data = RepeatDataset(inner, times=2, lazy_init=True)
    assert not data._fully_initialized and not inner._fully_initialized
    data.full_init()
    assert inner._fully_initialized and len(data) == 6
    concat = ConcatDataset([ToyDataset(n=2, lazy_init=True)], lazy_init=True)
    assert concat[1]["value"] == 1  # the first access initialises


def test_repeat_dataset_cycles():
    data = RepeatDataset(dict(type="_WrapperToyDataset", n=3), times=3)
    assert len(data) == 9
    assert [data[i]["value"] for i in range(9)] == [0, 1, 2] * 3
    assert data.get_data_info(4)["value"] == 1 and data.metainfo["classes"] == ("a", "b", "c")


def test_wrappers_refuse_subsets():
    for data in (ConcatDataset([ToyDataset()]), RepeatDataset(ToyDataset(), 2),
                 ClassBalancedDataset(ToyDataset(), 0.5)):
        with pytest.raises(NotImplementedError):
            data.get_subset(1)
        with pytest.raises(NotImplementedError):
            data.get_subset_(1)


def test_class_balanced_repeat_factors():
    # Category 0 in 1 of 4 samples (f=0.25), category 1 in all 4 (f=1).
    cats = [[0, 1], [1], [1], [1]]
    data = ClassBalancedDataset(ToyDataset(n=4, cats=cats), oversample_thr=0.5)
    # r(0) = sqrt(0.5 / 0.25) = 1.414 -> sample 0 appears ceil(1.414) = 2 times; r(1) = 1.
    assert data.repeat_indices == [0, 0, 1, 2, 3]
    assert len(data) == 5 and data[1]["value"] == 0 and data.get_cat_ids(1) == [0, 1]


def test_class_balanced_formula_and_empty_samples():
    cats = [[0]] + [[1]] * 8 + [[]]
    data = ClassBalancedDataset(ToyDataset(n=10, cats=cats), oversample_thr=0.9)
    factor0 = max(1.0, math.sqrt(0.9 / 0.1))  # 3.0
    factor1 = max(1.0, math.sqrt(0.9 / 0.8))
    expected = [0] * math.ceil(factor0) + [i for i in range(1, 9) for _ in range(math.ceil(factor1))] + [9]
    assert data.repeat_indices == expected


def test_wrappers_accept_builtin_datasets():
    data = RepeatDataset(dict(type="SyntheticClassification", num_samples=3), times=2)
    assert len(data) == 6 and data.metainfo == {}


def test_wrapped_base_dataset_through_build_dataloader():
    from minirunner.dataset import build_dataloader

    loader = build_dataloader(dict(
        dataset=dict(type="RepeatDataset", times=2, dataset=dict(type="_WrapperToyDataset", n=3, lazy_init=True)),
        sampler=dict(type="DefaultSampler", shuffle=False), batch_size=4, collate_fn=dict(type="pseudo_collate")))
    values = [v for batch in loader for v in batch["value"]]
    assert values == [0, 1, 2, 0, 1, 2]
