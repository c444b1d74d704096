"""The deletion rule, the pointer and the lock, one function at a time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from minirunner.checkpoint import (
    LAST_CHECKPOINT,
    WorkDirLock,
    WorkDirLockedError,
    delete_checkpoint,
    read_last_checkpoint,
    resolve_stored_name,
    save_checkpoint_file,
    write_last_checkpoint,
)
from minirunner.logging import get_logger


@pytest.fixture
def caplog(caplog):
    """caplog, also attached to the minirunner logger (which does not propagate to the root)."""
    logger = get_logger()
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    save_checkpoint_file({"w": torch.ones(2)}, str(work / "epoch_1.pth"))
    save_checkpoint_file({"w": torch.ones(2)}, str(tmp_path / "outside.pth"))
    return work


@pytest.mark.parametrize(
    "name, reason",
    [
        ("/etc/passwd", "is an absolute path"),
        ("../outside.pth", "climbs out of its folder"),
        ("sub/../../outside.pth", "climbs out of its folder"),
        ("", "is not a file name"),
        (3, "is not a file name"),
        ("a\0b", "is not a file name"),
    ],
)
def test_names_that_leave_the_folder_are_refused_with_a_warning(folder, caplog, name, reason):
    with caplog.at_level(logging.WARNING):
        assert resolve_stored_name(str(folder), name, "entry") is None
        assert delete_checkpoint(str(folder), name, "test") is False
    assert reason in caplog.text
    assert (folder.parent / "outside.pth").is_file()


def test_a_relative_name_inside_resolves(folder):
    assert resolve_stored_name(str(folder), "sub/epoch_1.pth", "entry") == str(folder / "sub" / "epoch_1.pth")


def test_delete_removes_a_named_checkpoint_and_logs_it(folder, caplog):
    with caplog.at_level(logging.INFO):
        assert delete_checkpoint(str(folder), "epoch_1.pth", "max_keep_ckpts=1") is True
    assert not (folder / "epoch_1.pth").exists()
    assert f"deleted {folder / 'epoch_1.pth'} (max_keep_ckpts=1)" in caplog.text
    assert delete_checkpoint(str(folder), "epoch_1.pth", "again") is False  # already gone: fine


def test_delete_refuses_links_folders_and_files_that_are_not_checkpoints(folder, caplog):
    os.symlink(folder / "epoch_1.pth", folder / "link.pth")
    (folder / "notes.pth").write_text("not a checkpoint")
    (folder / "sub.pth").mkdir()
    with caplog.at_level(logging.WARNING):
        for name in ("link.pth", "notes.pth", "sub.pth"):
            assert delete_checkpoint(str(folder), name, "test") is False
    assert (folder / "link.pth").is_symlink() and (folder / "notes.pth").is_file() and (folder / "sub.pth").is_dir()
    assert "is not a regular file" in caplog.text and "is not a checkpoint file" in caplog.text


def test_the_pointer_is_relative_inside_the_work_dir_and_absolute_outside(folder, tmp_path):
    write_last_checkpoint(str(folder), str(folder / "epoch_1.pth"))
    assert (folder / LAST_CHECKPOINT).read_text() == "epoch_1.pth"
    assert read_last_checkpoint(str(folder)) == str(folder / "epoch_1.pth")
    store = tmp_path / "store" / "work"
    write_last_checkpoint(str(folder), str(store / "epoch_2.pth"))
    assert (folder / LAST_CHECKPOINT).read_text() == str(store / "epoch_2.pth")
    assert read_last_checkpoint(str(folder), [str(store)]) == str(store / "epoch_2.pth")
    # Without that folder being the run's own, the same pointer is not followed.
    assert read_last_checkpoint(str(folder)) is None


@pytest.mark.parametrize("content", [b"\xff\xfe\x80", b"../outside.pth", b"/etc/passwd"])
def test_an_untrusted_pointer_is_ignored_with_a_warning(folder, caplog, content):
    (folder / LAST_CHECKPOINT).write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert read_last_checkpoint(str(folder)) is None
    assert "ignoring" in caplog.text


def test_the_lock_admits_one_holder_and_names_it(tmp_path):
    first, second = WorkDirLock(str(tmp_path)), WorkDirLock(str(tmp_path))
    first.acquire()
    try:
        with pytest.raises(WorkDirLockedError, match=rf"{tmp_path}.*pid {os.getpid()}, started .*--work-dir"):
            second.acquire()
        assert first.held and not second.held
    finally:
        first.release()
    second.acquire()  # free again once released
    second.release()


@pytest.mark.slow
def test_the_lock_goes_with_a_killed_process(tmp_path):
    holder = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, signal
            from minirunner.checkpoint import WorkDirLock
            WorkDirLock({str(tmp_path)!r}).acquire()
            os.kill(os.getpid(), signal.SIGKILL)
        """)],
        timeout=60,
    )
    assert holder.returncode == -9
    lock = WorkDirLock(str(tmp_path))
    lock.acquire()  # no stale lock: the operating system released it
    lock.release()
