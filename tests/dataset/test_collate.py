"""The collate functions registered in FUNCTIONS."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import pytest
import torch
import torch.utils.data

from minirunner.dataset import pseudo_collate
from minirunner.registry import FUNCTIONS

Point = namedtuple("Point", ["x", "y"])


def test_default_collate_is_torchs_own():
    assert FUNCTIONS.get("default_collate") is torch.utils.data.default_collate
    assert FUNCTIONS.get("pseudo_collate") is pseudo_collate


def test_pseudo_collate_groups_without_stacking():
    a, b = torch.zeros(2, 3), torch.ones(1, 5)
    batch = pseudo_collate(
        [
            dict(inputs=a, data_samples=dict(label=1, name="a"), pair=(1, "p")),
            dict(inputs=b, data_samples=dict(label=2, name="b"), pair=(2, "q")),
        ]
    )
    assert set(batch) == {"inputs", "data_samples", "pair"}
    assert batch["inputs"][0] is a and batch["inputs"][1] is b
    assert batch["data_samples"] == dict(label=[1, 2], name=["a", "b"])
    assert batch["pair"] == ([1, 2], ["p", "q"])


def test_pseudo_collate_keeps_container_types():
    assert pseudo_collate([Point(1, 2), Point(3, 4)]) == Point([1, 3], [2, 4])
    assert pseudo_collate([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]
    grouped = pseudo_collate([OrderedDict(a=1), OrderedDict(a=2)])
    assert isinstance(grouped, OrderedDict) and grouped == OrderedDict(a=[1, 2])
    assert pseudo_collate(["ab", "cd"]) == ["ab", "cd"]


def test_pseudo_collate_rejects_ragged_sequences():
    with pytest.raises(ValueError, match="same length"):
        pseudo_collate([(1, 2), (3,)])
