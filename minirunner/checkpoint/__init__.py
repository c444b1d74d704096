"""Checkpoint files and (sharded) checkpoint directories: atomic writes, verification, safe loads, the ``last_checkpoint`` pointer,
what a run may delete, and the work-dir lock.

A layer below the hooks and the Runner, which both use it; it imports only ``utils``,
``dist``, ``logging`` and torch.
"""

from .atomic import (
    atomic_write,
    remove_stale_temporaries,
    save_checkpoint_file,
    wait_for_checkpoint_writes,
)
from .discovery import find_latest_checkpoint, load_latest_checkpoint, read_run_id
from .errors import (
    CheckpointError,
    CorruptCheckpointError,
    DiskFullError,
    UnsafeCheckpointError,
    WorkDirLockedError,
)
from .load import CONVERT_TOOL, check_checkpoint_path, load_checkpoint_file, read_torch_file
from .lock import LOCK_FILE, WorkDirLock
from .ownership import delete_checkpoint, is_inside, resolve_stored_name, stored_name
from .pointer import LAST_CHECKPOINT, read_last_checkpoint, write_last_checkpoint
from .sharded import (
    delete_checkpoint_dir,
    is_checkpoint_dir,
    load_checkpoint_dir,
    load_full_state,
    load_sharded_tensors,
    read_metadata,
    save_checkpoint_dir,
    verify_checkpoint_dir,
)
from .verify import verify_checkpoint

__all__ = [
    "CONVERT_TOOL", "LAST_CHECKPOINT", "LOCK_FILE", "CheckpointError", "CorruptCheckpointError",
    "DiskFullError", "UnsafeCheckpointError", "WorkDirLock", "WorkDirLockedError", "atomic_write",
    "check_checkpoint_path", "delete_checkpoint", "find_latest_checkpoint", "is_inside",
    "load_checkpoint_file", "load_latest_checkpoint", "read_last_checkpoint", "read_run_id", "read_torch_file",
    "remove_stale_temporaries", "resolve_stored_name", "save_checkpoint_file", "stored_name",
    "verify_checkpoint", "wait_for_checkpoint_writes", "write_last_checkpoint",
    "delete_checkpoint_dir", "is_checkpoint_dir", "load_checkpoint_dir", "load_full_state", "load_sharded_tensors", "read_metadata",
    "save_checkpoint_dir", "verify_checkpoint_dir",
]
