"""Atomic, durable checkpoint writes, and the temporary files they leave behind.

A checkpoint is written to a temporary file in its destination folder, fsynced, renamed over
the destination and then the folder is fsynced, so a crash at any moment leaves either the
previous file or the complete new one. The fsyncs and the rename may run on a background
thread (``background=True``): training goes on while the disk catches up, and the next save,
the end of training or :func:`wait_for_checkpoint_writes` waits for them.

A write that fails because the disk is full raises :class:`DiskFullError` naming the file,
after removing the partial temporary file; the files already in place are never touched.
"""

from __future__ import annotations

import _thread
import atexit
import errno
import functools
import glob
import os
import re
import shutil
import socket
import threading
from typing import Any, Callable

import torch

from minirunner.logging import print_log

from .errors import CheckpointError, DiskFullError

# Below this much free space after a failed write, the write failed for want of space:
# torch's writer reports ENOSPC only as "unexpected pos N vs M".
_NEARLY_FULL_BYTES = 1 << 20

def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable: without it a crash can forget the new name.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Some file systems do not open folders; the data itself is already synced.
    try:
        os.fsync(fd)
    except OSError:
        pass  # ... or do not fsync them (some network file systems).
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    # Windows flushes only handles opened for writing; POSIX flushes the file through any.
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32] or "host"


def _temporary_path(path: str) -> str:
    # Hidden, in the same folder (a rename across file systems is not atomic), and named
    # after the host and process, so a later run can tell a dead writer's leftovers apart.
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp-{_host_tag()}-{os.getpid()}")


def _make_folder(folder: str) -> None:
    if not os.path.isdir(folder):  # one stat in the usual case; makedirs costs an exception
        os.makedirs(folder, exist_ok=True)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """Write ``path`` so that it either holds the complete new content or is untouched.

    ``write(file)`` writes into a temporary file in the same folder, which is flushed,
    fsynced and renamed over ``path``; then the folder is fsynced. A crash at any moment
    leaves either the old file or the new one, never a half-written one.

    Example:
        >>> atomic_write('/tmp/pointer', lambda f: f.write(b'epoch_3.pth'))  # doctest: +SKIP
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = _temporary_path(path)
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        _discard(temporary, path, error)
        raise
    _fsync_folder(folder)


class _BackgroundCommits:
    """Runs at most one commit (fsync, rename, follow-up) at a time on a helper thread.

    Errors are kept and raised by the next :meth:`wait`, on the training thread. The
    thread is started with ``_thread``, which, unlike ``threading.Thread.start``, does not
    wait for the new thread to get going: that handshake alone cost about a quarter of a
    small checkpoint's ``torch.save`` on a busy machine. An ``atexit`` hook lets a commit
    still running at interpreter exit finish.
    """

    def __init__(self) -> None:
        self._done: threading.Event | None = None
        self._error: BaseException | None = None

    def start(self, task: Callable[[], None]) -> None:
        self.wait()
        done = threading.Event()
        self._done = done
        _thread.start_new_thread(self._run, (task, done))

    def _run(self, task: Callable[[], None], done: threading.Event) -> None:
        try:
            task()
        except BaseException as error:  # re-raised on the training thread by wait()
            self._error = error
        finally:
            done.set()

    def wait(self, raise_error: bool = True) -> BaseException | None:
        done, self._done = self._done, None
        if done is not None:
            done.wait()
        error, self._error = self._error, None
        if error is not None and raise_error:
            if isinstance(error, CheckpointError):
                raise error
            raise CheckpointError(f"finishing a checkpoint write failed: {error}") from error
        return error


_COMMITS = _BackgroundCommits()
atexit.register(_COMMITS.wait, False)
if hasattr(os, "register_at_fork"):
    # A forked child (a dataloader worker) has no commit thread: it must never wait for one.
    os.register_at_fork(after_in_child=lambda: _COMMITS.__init__())


def wait_for_checkpoint_writes(raise_error: bool = True) -> BaseException | None:
    """Wait until every checkpoint saved with ``background=True`` is durably in place.

    Raises :class:`CheckpointError` if one failed; with ``raise_error=False`` the error is
    returned instead (for callers already handling another exception).
    """
    return _COMMITS.wait(raise_error)


def save_checkpoint_file(
    checkpoint: dict,
    path: str,
    *,
    background: bool = False,
    then: Callable[[], None] | None = None,
) -> None:
    """Save ``checkpoint`` (tensors and plain Python types only) to ``path`` atomically.

    The state is serialised into a temporary file before this returns, so later changes
    to the tensors do not reach the file. The fsync, the rename over ``path`` and
    ``then()`` (e.g. updating the pointer, deleting old checkpoints: things that must
    wait until the new file is safely in place) follow at once, or on a background
    thread with ``background=True``.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    _make_folder(folder)
    # Commits finish in order: the pointer never goes back to an older checkpoint.
    _COMMITS.wait()
    temporary = _temporary_path(path)
    crc_was_on = torch.serialization.get_crc32_options()
    try:
        if not crc_was_on:  # the CRC-32s are what verify_checkpoint checks
            torch.serialization.set_crc32_options(True)
        torch.save(checkpoint, temporary)  # a path: torch writes it from C++, the fastest way
    except BaseException as error:
        _discard(temporary, path, error)
        raise
    finally:
        if not crc_was_on:
            torch.serialization.set_crc32_options(False)

    def commit() -> None:
        try:
            _fsync_file(temporary)
            os.replace(temporary, path)
        except BaseException as error:
            _discard(temporary, path, error)
            raise
        _fsync_folder(folder)
        if then is not None:
            then()

    if background:
        _COMMITS.start(commit)
    else:
        commit()


def _discard(temporary: str, path: str, error: BaseException) -> None:
    """After a failed write of ``path``: remove its temporary file, and raise
    :class:`DiskFullError` in place of ``error`` when the disk is full."""
    full = _disk_full(error, os.path.dirname(os.path.abspath(path)))  # before the removal frees space
    _remove_quietly(temporary)
    if full:
        raise DiskFullError(path) from error


def _disk_full(error: BaseException, folder: str) -> bool:
    """Whether a failed write failed because ``folder``'s file system is full."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    if not isinstance(error, RuntimeError):
        return False
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows): not diagnosed
        return False
    return stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES


def remove_stale_temporaries(folder: str) -> list[str]:
    """Delete temporary checkpoint files that dead processes of this host left in ``folder``.

    A process killed while writing leaves ``.<name>.tmp-<host>-<pid>``; files of processes
    that still run (or of other hosts sharing the folder) are kept. Returns what was deleted.
    """
    removed = []
    host = _host_tag()
    for path in glob.glob(os.path.join(glob.escape(folder), ".*.tmp-*")):
        match = re.fullmatch(r"\..+\.tmp-([A-Za-z0-9]+)-(\d+)", os.path.basename(path))
        if match is None or match.group(1) != host or _process_alive(int(match.group(2))):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            from .sharded import holds_only_checkpoint_files  # a sharded checkpoint's directory

            if not holds_only_checkpoint_files(path):
                continue
            shutil.rmtree(path, ignore_errors=True)
        else:
            _remove_quietly(path)
        removed.append(path)
        print_log(f"deleted {path} (left by a writer that died, pid {match.group(2)})", logger="current")
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


