"""The work-dir lock: one training run at a time in a work dir.

``train()`` on rank 0 holds ``<work_dir>/.minirunner.lock`` with ``fcntl.flock``; the
operating system releases it when the process ends, however it ends, so a crashed run never
leaves a stale lock. The file holds the holder's host, pid and start time for the message a
second run prints. The file itself stays: deleting it on exit would let a run that opened it
just before lock a file that no longer has a name, beside a third run locking a new one.
"""

from __future__ import annotations

import os
import socket
import time
from typing import IO

from .errors import WorkDirLockedError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; runs are not guarded
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".minirunner.lock"


class WorkDirLock:
    """An exclusive, non-blocking lock on a work dir.

    Example:
        >>> lock = WorkDirLock('work_dirs/run')  # doctest: +SKIP
        >>> lock.acquire()  # raises WorkDirLockedError while another run trains there
        >>> lock.release()
    """

    def __init__(self, work_dir: str) -> None:
        self.work_dir = os.path.abspath(work_dir)
        self.path = os.path.join(self.work_dir, LOCK_FILE)
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`WorkDirLockedError` naming the holder."""
        if self._handle is not None or fcntl is None:
            return
        os.makedirs(self.work_dir, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read(200).strip() or "another process"
            handle.close()
            raise WorkDirLockedError(
                f"work dir {self.work_dir} is in use by another training run ({holder}); wait for it "
                "to finish, or train in another work dir (--work-dir)"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        handle.write(f"host {socket.gethostname()}, pid {os.getpid()}, started {started}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()
