"""Sharded checkpoint directories (DCP) in one process: saving, verification, loading that never
runs code, and deletion only of what is ours. No NumPy needed: these run in the default env."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from torch import nn

from minirunner.checkpoint import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    delete_checkpoint,
    load_checkpoint_file,
    load_sharded_tensors,
    read_metadata,
    remove_stale_temporaries,
    save_checkpoint_dir,
    verify_checkpoint_dir,
)


class Payload:
    """Unpickling this runs code: it creates the file it names."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def saved(tmp_path, name: str = "iter_1", extra: object = None) -> str:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    tensors = {"model": model.state_dict(), "extra": {"lr": 0.1} if extra is None else extra}
    path = str(tmp_path / name)
    save_checkpoint_dir(tensors, {"meta": {"iter": 1, "epoch": 0}}, path, process_group=None)
    return path


def test_a_saved_directory_verifies_and_loads(tmp_path):
    path = saved(tmp_path)
    assert sorted(os.listdir(path)) == [".metadata", "__0_0.distcp", "state.pth"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary left
    verify_checkpoint_dir(path)
    checkpoint = load_checkpoint_file(path)
    assert checkpoint["meta"]["iter"] == 1 and checkpoint["sharded"] == path
    state = {"model": {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}, "extra": {"lr": 0.0}}
    load_sharded_tensors(state, path)
    torch.manual_seed(0)
    assert torch.equal(state["model"]["weight"], nn.Linear(3, 2).weight.detach())
    assert state["extra"] == {"lr": 0.1}


def test_a_crafted_metadata_is_refused_and_runs_nothing(tmp_path):
    path = saved(tmp_path)
    marker = tmp_path / "code-ran"
    with open(os.path.join(path, ".metadata"), "wb") as handle:
        pickle.dump(Payload(str(marker)), handle)
    for load in (read_metadata, verify_checkpoint_dir, load_checkpoint_file):
        with pytest.raises(UnsafeCheckpointError, match=r"names (builtins|io)\.open, which is not part of DCP"):
            load(path)
    with pytest.raises(UnsafeCheckpointError):
        load_sharded_tensors({"model": {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}}, path)
    assert not marker.exists()


def test_a_crafted_item_is_refused_by_the_weights_only_planner(tmp_path):
    marker = tmp_path / "code-ran"
    path = saved(tmp_path, extra={"payload": Payload(str(marker))})
    assert not marker.exists()  # saving pickled it, nothing ran
    with pytest.raises(UnsafeCheckpointError, match="extra.payload"):
        load_sharded_tensors({"model": {"weight": torch.zeros(2, 3), "bias": torch.zeros(2)}, "extra": {"payload": None}}, path)
    assert not marker.exists()


def test_verification_finds_missing_and_truncated_files(tmp_path):
    path = saved(tmp_path)
    shard = os.path.join(path, "__0_0.distcp")
    size = os.path.getsize(shard)
    with open(shard, "r+b") as handle:
        handle.truncate(size - 1)
    with pytest.raises(CorruptCheckpointError, match=r"truncated: __0_0.distcp has"):
        verify_checkpoint_dir(path)
    os.remove(shard)
    with pytest.raises(CorruptCheckpointError, match="__0_0.distcp is missing"):
        load_checkpoint_file(path)
    os.remove(os.path.join(path, ".metadata"))
    with pytest.raises((CorruptCheckpointError, FileNotFoundError)):
        load_checkpoint_file(path)


def test_rotation_deletes_only_directories_holding_only_checkpoint_files(tmp_path):
    ours, foreign, linked = saved(tmp_path, "iter_1"), saved(tmp_path, "iter_2"), saved(tmp_path, "iter_3")
    (tmp_path / "iter_2" / "notes.txt").write_text("mine")
    os.symlink(linked, tmp_path / "iter_4")
    empty = tmp_path / "iter_5"
    empty.mkdir()
    assert delete_checkpoint(str(tmp_path), "iter_1", "test") and not os.path.exists(ours)
    assert not delete_checkpoint(str(tmp_path), "iter_2", "test") and os.path.isfile(os.path.join(foreign, "notes.txt"))
    assert not delete_checkpoint(str(tmp_path), "iter_4", "test") and os.path.isdir(linked)
    assert not delete_checkpoint(str(tmp_path), "iter_5", "test") and empty.is_dir()
    assert not delete_checkpoint(str(tmp_path), "../iter_3", "test")


def test_a_dead_writers_temporary_directory_is_removed(tmp_path):
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = "".join(c for c in socket.gethostname() if c.isalnum())[:32] or "host"
    leftover = tmp_path / f".iter_2.tmp-{host}-{dead.stdout.strip()}"
    leftover.mkdir()
    (leftover / "__0_0.distcp").write_bytes(b"partial")
    kept = tmp_path / f".iter_3.tmp-{host}-{dead.stdout.strip()}"
    kept.mkdir()
    (kept / "other").write_text("not a checkpoint file")
    removed = remove_stale_temporaries(str(tmp_path))
    assert removed == [str(leftover)] and not leftover.exists() and kept.exists()
