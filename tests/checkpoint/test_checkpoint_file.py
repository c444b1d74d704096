"""Checkpoint files: atomic writes, CRC-32 verification, safe loading, background commits."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch

from minirunner.checkpoint import atomic as ckpt
from minirunner.checkpoint import (
    CONVERT_TOOL,
    CheckpointError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    atomic_write,
    load_checkpoint_file,
    remove_stale_temporaries,
    save_checkpoint_file,
    verify_checkpoint,
    wait_for_checkpoint_writes,
)


def _state() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "meta": {"epoch": 2, "iter": 20, "name": "x"},
        "state_dict": {"w": torch.randn(64, 64, generator=generator), "b": torch.randn(64, generator=generator)},
    }


def _record_span(path, suffix: str) -> tuple[int, int]:
    """Where the bytes of the zip record ending in ``suffix`` lie in the file (from the zip
    headers, read here independently of the code under test)."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
    with open(path, "rb") as handle:
        handle.seek(info.header_offset + 26)
        name_length = int.from_bytes(handle.read(2), "little")
        extra_length = int.from_bytes(handle.read(2), "little")
    start = info.header_offset + 30 + name_length + extra_length
    return start, start + info.file_size


def _flip(path, position: int) -> None:
    data = bytearray(open(path, "rb").read())
    data[position] ^= 0x10
    open(path, "wb").write(bytes(data))


def test_save_then_load_round_trip_without_leftovers(tmp_path):
    path = tmp_path / "epoch_2.pth"
    save_checkpoint_file(_state(), str(path))
    loaded = load_checkpoint_file(str(path))
    assert loaded["meta"] == {"epoch": 2, "iter": 20, "name": "x"}
    assert torch.equal(loaded["state_dict"]["w"], _state()["state_dict"]["w"])
    assert verify_checkpoint(str(path)) is True
    assert os.listdir(tmp_path) == ["epoch_2.pth"]  # no temporary file left


def test_torch_itself_does_not_catch_a_flipped_byte_in_tensor_data(tmp_path):
    # Why verify_checkpoint exists: torch reads records without checking their CRC-32.
    path = tmp_path / "a.pth"
    torch.save(_state(), path)
    start, end = _record_span(path, "data/0")
    _flip(path, (start + end) // 2)
    loaded = torch.load(path, weights_only=True)  # no error...
    assert not torch.equal(loaded["state_dict"]["w"], _state()["state_dict"]["w"])  # ...wrong data


@pytest.mark.parametrize("record", ["data/0", "data/1", "data.pkl"])
def test_a_flipped_byte_is_detected(tmp_path, record):
    path = tmp_path / "a.pth"
    save_checkpoint_file(_state(), str(path))
    start, end = _record_span(path, record)
    _flip(path, start + (end - start) // 3)
    with pytest.raises(CorruptCheckpointError, match="CRC-32"):
        verify_checkpoint(str(path))
    with pytest.raises(CorruptCheckpointError):
        load_checkpoint_file(str(path))


@pytest.mark.parametrize("keep", [0.5, 0.99, 100])
def test_a_truncated_file_is_detected(tmp_path, keep):
    path = tmp_path / "a.pth"
    save_checkpoint_file(_state(), str(path))
    data = open(path, "rb").read()
    cut = int(len(data) * keep) if keep < 1 else keep
    open(path, "wb").write(data[:cut])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_checkpoint_file(str(path))


def test_empty_file_is_corrupt(tmp_path):
    path = tmp_path / "a.pth"
    path.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        load_checkpoint_file(str(path))


def test_files_that_cannot_be_verified_still_load(tmp_path):
    # The legacy (non-zip) format has no checksums; a zip written with CRCs switched off
    # has zeros. Both load; verify_checkpoint says it could not check them.
    legacy = tmp_path / "legacy.pth"
    torch.save(_state(), legacy, _use_new_zipfile_serialization=False)
    assert verify_checkpoint(str(legacy)) is False
    assert load_checkpoint_file(str(legacy))["meta"]["iter"] == 20
    no_crc = tmp_path / "no_crc.pth"
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(_state(), no_crc)
        # Our writer switches them on for its own files (and back off afterwards).
        save_checkpoint_file(_state(), str(tmp_path / "ours.pth"))
        assert torch.serialization.get_crc32_options() is False
    finally:
        torch.serialization.set_crc32_options(True)
    assert verify_checkpoint(str(no_crc)) is False
    assert verify_checkpoint(str(tmp_path / "ours.pth")) is True


class _Marker:
    """Unpickling it would create a file: the proof that code from a checkpoint ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_that_runs_code_when_unpickled_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": _Marker(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError) as raised:
        load_checkpoint_file(str(path))
    message = str(raised.value)
    assert CONVERT_TOOL in message and "--trust-source" in message
    assert "it pickles io.open" in message  # names what the file would have called
    assert not marker.exists()  # nothing from the file ran
    # The control: a full unpickle does run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "last_checkpoint"
    path.write_bytes(b"old")

    def fail_half_way(handle):
        handle.write(b"new and lon")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(path), fail_half_way)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["last_checkpoint"]


def test_a_failing_save_leaves_the_previous_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "epoch_1.pth"
    save_checkpoint_file(_state(), str(path))
    before = path.read_bytes()

    def failing_save(obj, target, *args, **kwargs):
        open(target, "wb").write(b"partial")
        raise RuntimeError("no space left on device")

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises(RuntimeError, match="no space"):
        save_checkpoint_file(_state(), str(path))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["epoch_1.pth"]


def test_background_commit_runs_then_after_the_file_is_in_place(tmp_path):
    path = tmp_path / "iter_5.pth"
    seen = []
    save_checkpoint_file(_state(), str(path), background=True, then=lambda: seen.append(os.path.isfile(path)))
    wait_for_checkpoint_writes()
    assert seen == [True]
    assert load_checkpoint_file(str(path))["meta"]["iter"] == 20


def test_background_commit_errors_surface_on_the_next_wait(tmp_path, monkeypatch):
    def broken_fsync(path):
        raise OSError("I/O error")

    monkeypatch.setattr(ckpt, "_fsync_file", broken_fsync)
    then_called = []
    save_checkpoint_file(_state(), str(tmp_path / "iter_5.pth"), background=True, then=lambda: then_called.append(1))
    with pytest.raises(CheckpointError, match="I/O error"):
        wait_for_checkpoint_writes()
    # Not renamed into place, the follow-up not run, and the temporary removed.
    assert os.listdir(tmp_path) == [] and then_called == []
    wait_for_checkpoint_writes()  # reported once


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    host = ckpt._host_tag()
    dead = tmp_path / f".iter_5.pth.tmp-{host}-999999999"
    mine = tmp_path / f".iter_6.pth.tmp-{host}-{os.getpid()}"
    other_host = tmp_path / f".iter_7.pth.tmp-elsewhere{host}-999999999"
    for path in (dead, mine, other_host):
        path.write_bytes(b"x")
    removed = remove_stale_temporaries(str(tmp_path))
    assert removed == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, other_host.name])


def test_a_non_dict_checkpoint_is_an_error(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="dict"):
        load_checkpoint_file(str(path))


def test_pickle_error_is_not_confused_with_corruption(tmp_path):
    # A damaged pickle record fails its CRC before torch's unpickler sees it: the user is
    # told the file is damaged, not that it is unsafe.
    path = tmp_path / "a.pth"
    save_checkpoint_file(_state(), str(path))
    start, end = _record_span(path, "data.pkl")
    _flip(path, start + 2)
    with pytest.raises(CorruptCheckpointError):
        load_checkpoint_file(str(path))


def _set_folder_bit(data: bytes, record_suffix: bytes) -> bytes:
    """Set the MS-DOS folder bit in the central-directory entry of the record whose name ends
    with ``record_suffix`` (what one flipped bit there does)."""
    damaged = bytearray(data)
    start = 0
    while True:
        start = damaged.index(b"PK\x01\x02", start)
        name_length = int.from_bytes(damaged[start + 28 : start + 30], "little")
        name = bytes(damaged[start + 46 : start + 46 + name_length])
        if name.endswith(record_suffix):
            damaged[start + 38] |= 0x10  # external attributes, lowest byte
            return bytes(damaged)
        start += 46


def test_a_record_marked_as_a_folder_is_damage_not_silent_garbage(tmp_path):
    path = tmp_path / "c.pth"
    save_checkpoint_file(_state(), str(path))
    path.write_bytes(_set_folder_bit(path.read_bytes(), b"data/0"))
    # torch alone loads it, with the tensor's memory left uninitialised; the check refuses it.
    with pytest.raises(CorruptCheckpointError, match="marked as a folder"):
        verify_checkpoint(str(path))
    with pytest.raises(CorruptCheckpointError):
        load_checkpoint_file(str(path))
