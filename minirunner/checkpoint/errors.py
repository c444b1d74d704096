"""The errors of the checkpoint file layer."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file is truncated or damaged (a record fails its CRC-32 check, or its
    zip directory cannot be read)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint needs arbitrary unpickling, which could run code; it was not loaded."""


class DiskFullError(CheckpointError):
    """A checkpoint could not be written because its file system has no space left.

    The temporary file is removed and the checkpoints already on disk are untouched.

    Attributes:
        path: the checkpoint that was being written.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"no space left on device while writing {path}; the partial file was removed and "
                         "earlier checkpoints are intact. Free space (or set max_keep_ckpts) and resume")
        self.path = path


class WorkDirLockedError(CheckpointError):
    """Another training run holds the work dir's lock."""
