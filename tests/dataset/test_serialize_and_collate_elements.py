"""The packed data list (no NumPy) and data elements in torch's default_collate."""

from __future__ import annotations

import torch

from minirunner.dataset import default_collate, serialize
from minirunner.structures import BaseDataElement, InstanceData


def test_pack_round_trips_and_subsets():
    items = [dict(i=i, name="x" * i) for i in range(5)]
    buffer, ends = serialize.pack(items)
    assert isinstance(buffer, bytes) and ends.dtype is torch.int64 and len(ends) == 5
    assert [serialize.unpack(buffer, ends, i) for i in range(5)] == items
    sub_buffer, sub_ends = serialize.pack_subset(buffer, ends, [4, -5, 2])
    assert [serialize.unpack(sub_buffer, sub_ends, i) for i in range(3)] == [items[4], items[0], items[2]]
    empty_buffer, empty_ends = serialize.pack([])
    assert empty_buffer == b"" and len(empty_ends) == 0


def test_default_collate_keeps_data_elements_as_a_list():
    samples = [dict(inputs=torch.ones(2), data_samples=InstanceData(labels=torch.arange(n))) for n in (1, 3)]
    batch = default_collate(samples)
    assert batch["inputs"].shape == (2, 2)
    assert isinstance(batch["data_samples"], list) and [len(s) for s in batch["data_samples"]] == [1, 3]
    assert isinstance(batch["data_samples"][0], BaseDataElement)
