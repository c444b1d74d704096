"""minirunner.runner's checkpoint helpers with MMEngine's signatures: load_checkpoint,
save_checkpoint, load_state_dict, get_state_dict, weights_to_cpu, find_latest_checkpoint;
safe loads only, local files only."""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict

import pytest
import torch
from torch import nn

from minirunner.checkpoint import UnsafeCheckpointError
from minirunner.runner import (
    RemoteCheckpointError,
    find_latest_checkpoint,
    get_state_dict,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    weights_to_cpu,
)


class Net(nn.Module):
    def __init__(self, width: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 1)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, 2)


class Wrapper(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module


def test_signatures_match_mmengine():
    params = inspect.signature(load_checkpoint).parameters
    assert list(params) == ["model", "filename", "map_location", "strict", "logger", "revise_keys"]
    assert params["map_location"].default is None and params["strict"].default is False
    assert params["revise_keys"].default == [(r"^module\.", "")]
    assert list(inspect.signature(load_state_dict).parameters) == ["module", "state_dict", "strict", "logger"]
    assert list(inspect.signature(get_state_dict).parameters) == ["module", "destination", "prefix", "keep_vars"]
    assert list(inspect.signature(save_checkpoint).parameters)[:2] == ["checkpoint", "filename"]


def test_save_then_load_checkpoint_round_trip(tmp_path):
    source, target = Net(), Net()
    path = tmp_path / "sub" / "model.pth"
    save_checkpoint({"state_dict": weights_to_cpu(get_state_dict(source)), "meta": {"epoch": 3}}, str(path))
    checkpoint = load_checkpoint(target, str(path))
    assert checkpoint["meta"] == {"epoch": 3}
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_load_checkpoint_strips_module_prefix_and_applies_revise_keys(tmp_path):
    source, target = Net(), Net()
    # A DDP checkpoint without the 'state_dict' level: the whole file is the weights.
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "ddp.pth")
    load_checkpoint(target, str(tmp_path / "ddp.pth"))
    assert torch.equal(target.fc.weight, source.fc.weight)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "bb.pth")
    other = Net()
    load_checkpoint(other, str(tmp_path / "bb.pth"), revise_keys=[(r"^backbone\.", "")])
    assert torch.equal(other.conv.weight, source.conv.weight)


def test_load_checkpoint_into_a_wrapped_model(tmp_path):
    source = Net()
    torch.save({"state_dict": source.state_dict()}, tmp_path / "plain.pth")
    wrapped = nn.parallel.DistributedDataParallel.__new__(nn.parallel.DistributedDataParallel)
    nn.Module.__init__(wrapped)
    wrapped.module = Net()
    load_checkpoint(wrapped, str(tmp_path / "plain.pth"), strict=True)
    assert torch.equal(wrapped.module.fc.bias, source.fc.bias)


def test_load_state_dict_reports_missing_unexpected_and_shape_mismatch(caplog):
    model = Net(width=3)
    state = Net(width=4).state_dict()  # every conv/bn/fc tensor has another shape
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    before = model.conv.weight.clone()
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("checkpoint_helpers_test")
    logger.addHandler(Collect())
    load_state_dict(model, state, logger=logger)
    assert torch.equal(model.conv.weight, before)  # mismatched: the model keeps its own
    message = records[-1].getMessage()
    assert records[-1].levelno == logging.WARNING
    assert "unexpected key in source state_dict: extra.weight" in message
    assert "missing keys in source state_dict: fc.bias" in message
    assert "size mismatch for conv.weight: copying a param with shape (4, 1, 1, 1) from checkpoint" in message
    assert "the shape in current model is (3, 1, 1, 1)" in message
    with pytest.raises(RuntimeError, match="do not match exactly"):
        load_state_dict(model, state, strict=True)


def test_load_state_dict_ignores_missing_num_batches_tracked():
    model = Net()
    state = {k: v for k, v in Net().state_dict().items() if "num_batches_tracked" not in k}
    load_state_dict(model, state, strict=True)  # no error: only num_batches_tracked is missing


def test_get_state_dict_drops_wrappers_at_any_depth():
    inner = Net()
    model = nn.Sequential(nn.Linear(2, 2), Wrapper(inner))
    from minirunner.model.wrappers import is_model_wrapper

    if not is_model_wrapper(model[1]):
        # Our test wrapper is not registered: use DDP's class for the inner level instead.
        ddp = nn.parallel.DistributedDataParallel.__new__(nn.parallel.DistributedDataParallel)
        nn.Module.__init__(ddp)
        ddp.module = inner
        model = nn.Sequential(nn.Linear(2, 2), ddp)
    state = get_state_dict(model)
    assert "1.fc.weight" in state and not any(".module." in key for key in state)
    assert torch.equal(state["1.fc.weight"], inner.fc.weight)
    prefixed = get_state_dict(inner, prefix="net.")
    assert set(prefixed) == {f"net.{k}" for k in inner.state_dict()}
    kept = get_state_dict(inner, keep_vars=True)
    assert kept["fc.weight"] is inner.fc.weight
    destination = OrderedDict(existing=torch.ones(1))
    assert get_state_dict(inner, destination=destination) is destination and "existing" in destination


def test_weights_to_cpu_keeps_metadata():
    state = Net().state_dict()
    moved = weights_to_cpu(state)
    assert list(moved) == list(state)
    assert all(v.device.type == "cpu" for v in moved.values())
    assert moved._metadata == state._metadata


def test_urls_are_refused_with_a_download_hint(tmp_path):
    with pytest.raises(RemoteCheckpointError, match="Download it first"):
        load_checkpoint(Net(), "https://download.openmmlab.com/x.pth")
    with pytest.raises(RemoteCheckpointError):
        save_checkpoint({}, "s3://bucket/x.pth")


class Unpicklable:
    """A class a weights_only load refuses to rebuild."""


def test_unsafe_checkpoints_are_not_unpickled(tmp_path):
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": {}, "obj": Unpicklable()}, path)
    with pytest.raises(UnsafeCheckpointError, match="convert"):
        load_checkpoint(Net(), str(path))


def test_find_latest_checkpoint(tmp_path):
    assert find_latest_checkpoint(str(tmp_path)) is None
    for epoch in (1, 2):
        save_checkpoint({"meta": {"epoch": epoch, "iter": epoch * 4}, "state_dict": {}}, str(tmp_path / f"epoch_{epoch}.pth"))
    assert find_latest_checkpoint(str(tmp_path)).endswith("epoch_2.pth")
