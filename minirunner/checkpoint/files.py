"""Checkpoint files: atomic, durable writes, corruption checks and safe (``weights_only``) loads.

Durability. A checkpoint is written to a temporary file in its destination folder, fsynced,
renamed over the destination and then the folder is fsynced, so a crash at any moment leaves
either the previous file or the complete new one. The ``last_checkpoint`` pointer is written
the same way, after the checkpoint it names. The fsyncs and the rename may run on a background
thread (``background=True``): training goes on while the disk catches up, and the next save,
the end of training or :func:`wait_for_checkpoint_writes` waits for them.

Corruption. ``torch.save`` writes a zip archive whose central directory holds a CRC-32 of
every record, but torch reads records without checking them (it is built with
``MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS``): a truncated file fails to open, while a flipped
byte in tensor data loads silently. :func:`verify_checkpoint` recomputes those CRC-32s before
a load. The check costs nothing when saving, since torch computes the CRCs anyway.
"""

from __future__ import annotations

import _thread
import atexit
import functools
import glob
import logging
import mmap
import os
import pickle
import re
import socket
import struct
import threading
import zipfile
import zlib
from typing import Any, Callable

import torch

from minirunner.logging import print_log

LAST_CHECKPOINT = "last_checkpoint"
CONVERT_TOOL = "tools/convert_checkpoint.py"

_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_CRC_CHUNK = 64 << 20  # bytes per zlib.crc32 call: large enough to release the GIL usefully


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is truncated or damaged (a record fails its CRC-32 check)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint needs arbitrary unpickling, which could run code; it was not loaded."""


# ---------------------------------------------------------------------------------- writing
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
    except BaseException:
        _remove_quietly(temporary)
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
    except BaseException:
        _remove_quietly(temporary)
        raise
    finally:
        if not crc_was_on:
            torch.serialization.set_crc32_options(False)

    def commit() -> None:
        try:
            _fsync_file(temporary)
            os.replace(temporary, path)
        except BaseException:
            _remove_quietly(temporary)
            raise
        _fsync_folder(folder)
        if then is not None:
            then()

    if background:
        _COMMITS.start(commit)
    else:
        commit()


def write_last_checkpoint(work_dir: str, checkpoint_path: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` at ``checkpoint_path`` (atomically)."""
    atomic_write(os.path.join(work_dir, LAST_CHECKPOINT), lambda handle: handle.write(checkpoint_path.encode()))


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
        _remove_quietly(path)
        removed.append(path)
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


# ---------------------------------------------------------------------------------- reading
def verify_checkpoint(path: str) -> bool:
    """Check that ``path`` is complete and every record matches its stored CRC-32.

    Returns True when verified, False when the file cannot be verified (torch's legacy
    non-zip format, or a zip written with CRC computation switched off).

    Raises:
        CorruptCheckpointError: the file is truncated or a record fails its check.
    """
    with open(path, "rb") as handle:
        if handle.read(4) != _ZIP_LOCAL_HEADER:
            handle.seek(0)
            if handle.read(1) in (b"\x80", b""):  # a pickle (legacy format) or nothing
                if os.fstat(handle.fileno()).st_size == 0:
                    raise CorruptCheckpointError(f"{path} is empty")
                return False
            raise CorruptCheckpointError(f"{path} is not a checkpoint torch can read (unknown file format)")
        try:
            records = zipfile.ZipFile(handle).infolist()
        except (zipfile.BadZipFile, OSError, ValueError, struct.error) as error:
            raise CorruptCheckpointError(
                f"{path} is truncated or damaged: its zip directory cannot be read ({error})"
            ) from None
        if all(record.CRC == 0 for record in records if record.file_size):
            return False
        size = os.fstat(handle.fileno()).st_size
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            for record in records:
                _check_record(path, mapped, size, record)
    return True


def _check_record(path: str, mapped: mmap.mmap, size: int, record: zipfile.ZipInfo) -> None:
    start = record.header_offset
    header = mapped[start : start + 30]
    if len(header) < 30 or header[:4] != _ZIP_LOCAL_HEADER:
        raise CorruptCheckpointError(f"{path} is damaged: the header of record {record.filename!r} is broken")
    if record.compress_type != zipfile.ZIP_STORED:
        _check_compressed_record(path, mapped, record)
        return
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    begin = start + 30 + name_length + extra_length
    end = begin + record.file_size
    if end > size:
        raise CorruptCheckpointError(f"{path} is truncated: record {record.filename!r} runs past the end of the file")
    crc = 0
    view = memoryview(mapped)
    try:
        for offset in range(begin, end, _CRC_CHUNK):
            crc = zlib.crc32(view[offset : min(offset + _CRC_CHUNK, end)], crc)
    finally:
        view.release()
    if crc != record.CRC:
        raise CorruptCheckpointError(
            f"{path} is damaged: record {record.filename!r} fails its CRC-32 check "
            f"(stored {record.CRC:08x}, computed {crc:08x})"
        )


def _check_compressed_record(path: str, mapped: mmap.mmap, record: zipfile.ZipInfo) -> None:
    # torch never compresses records; another writer might. zipfile checks the CRC itself.
    try:
        with zipfile.ZipFile(_MappedFile(mapped)).open(record) as stream:
            while stream.read(_CRC_CHUNK):
                pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as error:
        raise CorruptCheckpointError(f"{path} is damaged: record {record.filename!r}: {error}") from None


class _MappedFile:
    """A minimal read-only file object over an mmap, for zipfile."""

    def __init__(self, mapped: mmap.mmap) -> None:
        self._mapped = mapped
        self._position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._mapped))[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, count: int = -1) -> bytes:
        end = len(self._mapped) if count is None or count < 0 else self._position + count
        data = self._mapped[self._position : end]
        self._position += len(data)
        return data

    def seekable(self) -> bool:
        return True


def load_checkpoint_file(path: str, map_location: Any = "cpu", verify: bool = True) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``: no code in it can run.

    With ``verify`` (the default) the file is first checked against its CRC-32s.

    Raises:
        FileNotFoundError: there is no such file.
        CorruptCheckpointError: the file is truncated or damaged.
        UnsafeCheckpointError: the file holds Python objects that only a full unpickle
            could restore (a checkpoint of another framework); the message names
            ``tools/convert_checkpoint.py``, which converts it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if verify:
        verify_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(_unsafe_message(path, error)) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dict (found {type(checkpoint).__name__})")
    return checkpoint


def _unsafe_message(path: str, error: BaseException) -> str:
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    what = f" (it pickles {found.group(1)})" if found else ""
    return (
        f"refusing to load {path}: it holds Python objects that only a full unpickle could restore"
        f"{what}, and unpickling can run arbitrary code; nothing from it was run. If you trust its "
        f"source, convert it once into a safe checkpoint: python {CONVERT_TOOL} {path} "
        "<converted.pth> --trust-source"
    )


# ---------------------------------------------------------------------------------- finding
def _pointer_target(work_dir: str) -> str | None:
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as handle:
        path = handle.read().strip()
    if path and not os.path.isabs(path):
        path = os.path.join(work_dir, path)
    return os.path.abspath(path) if path else None


def _candidate_paths(work_dir: str) -> tuple[list[str], str | None]:
    pointer = _pointer_target(work_dir)
    folders = [os.path.abspath(work_dir)]
    if pointer is not None and os.path.dirname(pointer) not in folders:
        folders.append(os.path.dirname(pointer))
    paths = []
    for folder in folders:
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.pth"))):
            # best_*.pth are side copies without the optimizer: never resumed from.
            if not os.path.basename(path).startswith("best_"):
                paths.append(path)
    if pointer is not None and os.path.isfile(pointer) and pointer not in paths:
        paths.append(pointer)
    return paths, pointer


def _header(path: str) -> tuple[dict | None, str]:
    """The counters and run id saved in ``path``, read without loading its tensors, or
    None and why not."""
    try:
        # mmap: the tensors are mapped, not read, so this costs about the pickle's size.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        return None, "it needs arbitrary unpickling (not loaded; see " + CONVERT_TOOL + ")"
    except Exception as error:
        return None, f"it cannot be read, it is truncated or damaged ({str(error).splitlines()[0][:120]})"
    if not isinstance(checkpoint, dict):
        return None, "it does not hold a checkpoint dict"
    meta = checkpoint.get("meta") if isinstance(checkpoint.get("meta"), dict) else {}
    loop = checkpoint.get("loop") if isinstance(checkpoint.get("loop"), dict) else meta
    if "iter" not in loop and "epoch" not in loop:
        return None, "it has no epoch or iteration counters"
    header = {"iter": int(loop.get("iter", 0)), "epoch": int(loop.get("epoch", 0)), "run_id": meta.get("run_id")}
    return header, ""


def _ordered_candidates(work_dir: str) -> list[str]:
    """Resumable files, newest first: by saved (iter, epoch), the pointer's file winning ties.

    When the pointer's file is readable, only checkpoints of its run (the same ``run_id``)
    compete, so the leftovers of an earlier, longer run in the same folder are not taken.
    Files that cannot be read are reported here (those named like checkpoints, or the
    pointer's), since their counters are unknown.
    """
    paths, pointer = _candidate_paths(work_dir)
    headers = {}
    for path in paths:
        header, reason = _header(path)
        if header is not None:
            headers[path] = header
        elif path == pointer or _looks_like_checkpoint_name(path):
            _report_skipped(path, reason)
    run_id = headers[pointer]["run_id"] if pointer in headers else None
    readable = [p for p in headers if run_id is None or headers[p]["run_id"] == run_id]
    readable.sort(
        key=lambda p: (headers[p]["iter"], headers[p]["epoch"], p == pointer, os.path.getmtime(p)), reverse=True
    )
    return readable


def _report_skipped(path: str, reason: str) -> None:
    print_log(f"resume: skipping {path}: {reason}", logger="current", level=logging.WARNING)


def load_latest_checkpoint(work_dir: str, map_location: Any = "cpu") -> tuple[str, dict] | None:
    """The newest checkpoint of ``work_dir`` that verifies and loads, as ``(path, checkpoint)``.

    Every ``*.pth`` there (and in the folder ``last_checkpoint`` points into), except
    ``best_*`` side copies, is a candidate; they are tried by their saved counters, newest
    first. A truncated or damaged file is reported and skipped in favour of the previous
    one. Returns None when nothing loads.
    """
    for path in _ordered_candidates(work_dir):
        try:
            return path, load_checkpoint_file(path, map_location=map_location)
        except CheckpointError as error:
            _report_skipped(path, str(error))
    return None


def find_latest_checkpoint(work_dir: str) -> str | None:
    """The path of the newest checkpoint of ``work_dir`` that passes its CRC-32 check.

    See :func:`load_latest_checkpoint` for how candidates are ordered; damaged files are
    reported and skipped. Returns None when there is none.
    """
    for path in _ordered_candidates(work_dir):
        try:
            verify_checkpoint(path)
        except CorruptCheckpointError as error:
            _report_skipped(path, str(error))
            continue
        return path
    return None


def _looks_like_checkpoint_name(path: str) -> bool:
    return re.fullmatch(r"(epoch|iter)_\d+\.pth", os.path.basename(path)) is not None
