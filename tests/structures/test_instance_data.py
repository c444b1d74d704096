"""InstanceData: same-length fields, indexing by int/slice/list/long/bool tensors, cat."""

from __future__ import annotations

import pytest
import torch

from minirunner.structures import InstanceData


def make() -> InstanceData:
    data = InstanceData(metainfo=dict(img_shape=(8, 8)))
    data.labels = torch.tensor([2, 3, 5])
    data["scores"] = torch.tensor([0.8, 0.7, 0.1])
    data.names = ["a", "b", "c"]
    return data


def test_length_is_checked():
    data = make()
    assert len(data) == 3 and len(InstanceData()) == 0
    with pytest.raises(AssertionError):
        data.bboxes = torch.zeros(2, 4)
    with pytest.raises(AssertionError):
        data.count = 3  # not sized


def test_int_index_keeps_the_dimension_and_metainfo():
    data = make()
    one = data[1]
    assert isinstance(one, InstanceData) and len(one) == 1
    assert one.labels.tolist() == [3] and one.names == ["b"] and one.img_shape == (8, 8)
    assert data[-1].names == ["c"]
    with pytest.raises(IndexError):
        data[3]


def test_slice_long_and_bool_tensor_and_list_indexes():
    data = make()
    assert data[1:].names == ["b", "c"]
    order = data.scores.sort().indices
    assert data[order].scores.tolist() == sorted(data.scores.tolist())
    assert data[order].names == ["c", "b", "a"]
    kept = data[data.scores > 0.75]
    assert kept.labels.tolist() == [2] and kept.names == ["a"]
    empty = data[data.scores > 1]
    assert len(empty) == 0 and empty.names == []
    assert data[[0, 2]].names == ["a", "c"]
    assert data["labels"] is data.labels
    with pytest.raises(AssertionError):
        data[torch.tensor([True, False])]


def test_cat_joins_every_field():
    data = make()
    joined = InstanceData.cat([data, data[0:1]])
    assert joined.labels.tolist() == [2, 3, 5, 2] and joined.names == ["a", "b", "c", "a"]
    assert joined.metainfo == data.metainfo
    assert InstanceData.cat([data]) is data
    other = InstanceData(labels=torch.tensor([1]))
    with pytest.raises(AssertionError):
        InstanceData.cat([data, other])
