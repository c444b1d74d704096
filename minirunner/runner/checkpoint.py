"""Checkpoint files: atomic, durable writes and safe (``weights_only``) loads."""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch

LAST_CHECKPOINT = "last_checkpoint"


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable: without it a crash can forget the new name.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # Some file systems do not open folders; the data itself is already synced.
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, write: Any) -> None:
    """Write ``path`` so that it either holds the complete new content or is untouched.

    ``write(file)`` writes into a temporary file in the same folder, which is flushed,
    fsynced and renamed over ``path``; then the folder is fsynced. A crash at any moment
    leaves either the old file or the new one, never a half-written one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def save_checkpoint_file(checkpoint: dict, path: str) -> None:
    """Save ``checkpoint`` (tensors and plain Python types only) to ``path`` atomically."""
    atomic_write(path, lambda handle: torch.save(checkpoint, handle))


def write_last_checkpoint(work_dir: str, checkpoint_path: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` at ``checkpoint_path`` (atomically)."""
    atomic_write(os.path.join(work_dir, LAST_CHECKPOINT), lambda handle: handle.write(checkpoint_path.encode()))


def find_latest_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``last_checkpoint`` names, or None when there is none."""
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding="utf-8") as handle:
        path = handle.read().strip()
    if path and not os.path.isabs(path):
        path = os.path.join(work_dir, path)
    return path if path and os.path.isfile(path) else None


def load_checkpoint_file(path: str, map_location: Any = "cpu") -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``: no code in it can run.

    A file that needs arbitrary unpickling (a checkpoint of another framework that stores
    its own classes) is refused with a message saying how to convert it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise RuntimeError(
            f"refusing to load {path}: it holds Python objects that only a full unpickle could "
            f"restore, and unpickling can run arbitrary code ({str(error).splitlines()[0]}). If you "
            "trust its source, load it once with torch.load(path, weights_only=False) and save its "
            "weights (a dict of tensors) as a new file"
        ) from None
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f"{path} does not hold a checkpoint dict (found {type(checkpoint).__name__})")
    return checkpoint
