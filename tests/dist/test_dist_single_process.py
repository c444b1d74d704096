"""Distributed helpers in a single, non-distributed process: identities and no-ops."""

from __future__ import annotations

import pytest
import torch

from minirunner import dist


def test_rank_and_world_size():
    assert dist.is_distributed() is False
    assert dist.get_rank() == 0
    assert dist.get_world_size() == 1
    assert dist.is_main_process() is True


def test_local_rank_reads_torchrun_variable(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert dist.get_local_rank() == 0
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dist.get_local_rank() == 3


def test_barrier_returns():
    assert dist.barrier() is None


def test_broadcast_object_is_identity():
    obj = {"a": [1, 2], "b": "x"}
    assert dist.broadcast_object(obj) is obj
    assert dist.broadcast_object(obj, src=0) is obj


def test_all_gather_object_wraps_in_a_list():
    obj = ("x", 1)
    gathered = dist.all_gather_object(obj)
    assert gathered == [obj]
    assert gathered[0] is obj


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_all_reduce_is_identity(op):
    tensor = torch.tensor([1.0, -2.5, 3.0])
    result = dist.all_reduce(tensor, op=op)
    assert result is tensor
    assert torch.equal(result, torch.tensor([1.0, -2.5, 3.0]))


def test_all_reduce_rejects_unknown_op():
    with pytest.raises(ValueError, match="all_reduce op must be 'sum' or 'mean', got 'max'"):
        dist.all_reduce(torch.zeros(1), op="max")


def test_master_only_runs_on_rank_zero():
    calls = []

    @dist.master_only
    def save(path, *, mode="w"):
        """Save something."""
        calls.append((path, mode))
        return "saved"

    assert save("a", mode="x") == "saved"
    assert calls == [("a", "x")]
    assert save.__name__ == "save" and save.__doc__ == "Save something."


def test_master_only_skips_other_ranks(monkeypatch):
    import minirunner.dist.utils as dist_utils

    calls = []

    @dist.master_only
    def save():
        calls.append(1)
        return "saved"

    monkeypatch.setattr(dist_utils, "get_rank", lambda: 1)
    assert save() is None
    assert calls == []
