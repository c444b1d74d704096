"""Checkpoint directories written by every rank with ``torch.distributed.checkpoint`` (DCP).

A sharded checkpoint is a directory (``iter_N/``, ``epoch_N/``) holding DCP's files (the
``.metadata`` and one ``__<rank>_<n>.distcp`` per writer) for the tensors (model, optimizer),
and our ``state.pth``, an ordinary verified checkpoint holding everything that is not sharded
(meta, counters, RNG, sampler, schedulers, message hub, hook states).

Every rank writes into a hidden temporary directory; once DCP has finished on every rank (for
an asynchronous save: once its future is done), the ranks meet at a barrier and rank 0 renames
the directory into place, so a checkpoint directory is either complete or absent.

Loading never runs code: ``.metadata`` is read with an unpickler that admits only DCP's
metadata classes, and the non-tensor items are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import shutil
import stat
from typing import Any, Callable

import torch

from minirunner.logging import print_log

from .atomic import _COMMITS, _fsync_folder, _host_tag, save_checkpoint_file
from .errors import CheckpointError, CorruptCheckpointError, UnsafeCheckpointError

STATE_FILE = "state.pth"
METADATA_FILE = ".metadata"
# The files a checkpoint directory may hold: DCP's and ours. Rotation deletes nothing else.
_OWN_FILE = re.compile(r"(\.metadata|__\d+_\d+\.distcp|state\.pth)")

# What a DCP .metadata pickle may name: its dataclasses, torch.Size, dtypes, layouts, paths.
_METADATA_CLASSES = {
    "torch.distributed.checkpoint.metadata": {
        "Metadata", "MetadataIndex", "StorageMeta", "TensorProperties", "TensorStorageMetadata",
        "BytesStorageMetadata", "ChunkStorageMetadata", "_MEM_FORMAT_ENCODING",
    },
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.serialization": {"_get_layout"},
    "torch": {"Size"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePath", "PurePosixPath", "PureWindowsPath"},
    "collections": {"OrderedDict"},
}


class _MetadataUnpickler(pickle.Unpickler):
    """Admits only the classes DCP's metadata is made of (and torch's dtypes)."""

    def find_class(self, module: str, name: str) -> Any:
        if name in _METADATA_CLASSES.get(module, ()):
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"GLOBAL {module}.{name} is not part of DCP's checkpoint metadata")


def read_metadata(path: str) -> Any:
    """The DCP ``Metadata`` of checkpoint directory ``path``, unpickled without running code.

    Raises:
        UnsafeCheckpointError: ``.metadata`` names something else than DCP's metadata classes.
        CorruptCheckpointError: it is missing, truncated or not DCP metadata.
    """
    from torch.distributed.checkpoint.metadata import Metadata

    file = os.path.join(path, METADATA_FILE)
    try:
        with open(file, "rb") as handle:
            metadata = _MetadataUnpickler(handle).load()
    except pickle.UnpicklingError as error:
        if "is not part of DCP" in str(error):
            raise UnsafeCheckpointError(
                f"refusing to load {path}: its {METADATA_FILE} names {str(error).split()[1]}, which is not part "
                "of DCP's checkpoint metadata; unpickling it could run arbitrary code, so nothing from it was run"
            ) from None
        raise CorruptCheckpointError(f"{file} is truncated or damaged ({error})") from None
    except FileNotFoundError:
        raise CorruptCheckpointError(f"{path} has no {METADATA_FILE}: the sharded checkpoint is incomplete") from None
    except (EOFError, ValueError, TypeError, AttributeError) as error:
        raise CorruptCheckpointError(f"{file} is truncated or damaged ({type(error).__name__}: {error})") from None
    if not isinstance(metadata, Metadata):
        raise CorruptCheckpointError(f"{file} does not hold DCP metadata (found {type(metadata).__name__})")
    return metadata


def checkpoint_dir_entries(path: str) -> set[str]:
    """The top-level entries checkpoint directory ``path`` holds in DCP (e.g. ``{'model',
    'optimizer'}``), from its metadata (read safely), without reading tensors."""
    return {key.split(".", 1)[0] for key in read_metadata(path).state_dict_metadata}


def _safe_reader(path: str) -> Any:
    from torch.distributed.checkpoint import FileSystemReader

    class SafeFileSystemReader(FileSystemReader):
        """DCP's file reader with the metadata read by :func:`read_metadata`."""

        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            from torch.distributed.checkpoint.metadata import StorageMeta

            if kwargs.get("rank") is not None:
                raise CheckpointError("per-rank DCP metadata files are not supported")
            metadata = read_metadata(str(self.path))
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return SafeFileSystemReader(path)


def _weights_only_planner(everything: bool = False) -> Any:
    """A DCP load planner that reads non-tensor items with ``weights_only=True``; with
    ``everything``, it loads every item of the checkpoint into an empty state dict."""
    from torch.distributed.checkpoint import DefaultLoadPlanner
    from torch.distributed.checkpoint._nested_dict import set_element
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner

    class WeightsOnlyLoadPlanner(_EmptyStateDictLoadPlanner if everything else DefaultLoadPlanner):
        """DCP's load planner with non-tensor items read by ``torch.load(weights_only=True)``
        (DCP's own uses ``weights_only=False``)."""

        def load_bytes(self, read_item: Any, value: io.BytesIO) -> None:
            try:
                loaded = torch.load(value, weights_only=True)
            except pickle.UnpicklingError as error:
                raise UnsafeCheckpointError(
                    f"refusing to load item {read_item.dest_index.fqn}: it needs arbitrary unpickling ({error})"
                ) from None
            if self.flatten_state_dict:
                set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], loaded)
            else:
                self.state_dict[read_item.dest_index.fqn] = loaded

    return WeightsOnlyLoadPlanner()


def load_full_state(path: str) -> dict:
    """Everything checkpoint directory ``path`` holds in DCP, as whole tensors, in this process
    (e.g. ``{'model': {...}, 'optimizer': {...}}``); what ``dcp_to_torch_save`` reads, read safely."""
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    verify_checkpoint_dir(path)
    state: dict = {}
    _load_state_dict(state, storage_reader=_safe_reader(path), planner=_weights_only_planner(everything=True), no_dist=True)
    return state


def is_checkpoint_dir(path: str) -> bool:
    """True when ``path`` is a directory that looks like a sharded checkpoint."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, METADATA_FILE))


def verify_checkpoint_dir(path: str) -> Any:
    """Check a checkpoint directory without loading its tensors; returns its DCP metadata.

    It verifies when ``.metadata`` loads safely, every file it names exists inside the
    directory and is at least as long as the data recorded in it, and ``state.pth`` passes
    its CRC-32 check.
    """
    from .verify import verify_checkpoint

    metadata = read_metadata(path)
    needed: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        name = str(info.relative_path)
        if os.path.basename(name) != name or not _OWN_FILE.fullmatch(name):
            raise UnsafeCheckpointError(f"refusing to load {path}: its metadata names the file {name!r}")
        needed[name] = max(needed.get(name, 0), int(info.offset) + int(info.length))
    for name, size in needed.items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise CorruptCheckpointError(f"{path} is incomplete: {name} is missing")
        if os.path.getsize(file) < size:
            raise CorruptCheckpointError(
                f"{path} is truncated: {name} has {os.path.getsize(file)} bytes, the metadata records {size}"
            )
    state = os.path.join(path, STATE_FILE)
    if not os.path.isfile(state):
        raise CorruptCheckpointError(f"{path} is incomplete: {STATE_FILE} is missing")
    verify_checkpoint(state)
    return metadata


def load_checkpoint_dir(path: str, verify: bool = True) -> dict:
    """The non-tensor part of checkpoint directory ``path`` (its ``state.pth``), after
    :func:`verify_checkpoint_dir`; ``checkpoint['sharded']`` names the directory, whose
    tensors :func:`load_sharded_tensors` reads."""
    from .load import load_checkpoint_file

    if verify:
        verify_checkpoint_dir(path)
    checkpoint = load_checkpoint_file(os.path.join(path, STATE_FILE), verify=False)
    checkpoint["sharded"] = os.path.abspath(path)
    return checkpoint


def load_sharded_tensors(state: dict, path: str, process_group: Any = None) -> None:
    """Fill ``state`` (a dict of tensors and DTensors, e.g. ``{'model': ..., 'optimizer': ...}``)
    in place from checkpoint directory ``path``; every rank of ``process_group`` calls it.

    DCP reshards as needed: the directory may come from another number of processes.
    """
    import torch.distributed as torch_dist
    import torch.distributed.checkpoint as dcp

    from torch.distributed.checkpoint.api import CheckpointException

    read_metadata(path)  # refused here, before DCP wraps the error in its own
    try:
        dcp.load(
            state,
            storage_reader=_safe_reader(path),
            planner=_weights_only_planner(),
            process_group=process_group,
            no_dist=not torch_dist.is_initialized(),
        )
    except CheckpointException as error:
        for failure in error.failures.values():
            original = failure[0] if isinstance(failure, tuple) else failure
            if isinstance(original, CheckpointError):
                raise original from None
        raise


def save_checkpoint_dir(
    tensors: dict,
    checkpoint: dict,
    path: str,
    *,
    process_group: Any,
    background: bool = False,
    then: Callable[[], None] | None = None,
) -> None:
    """Write checkpoint directory ``path``: ``tensors`` with DCP from every rank, ``checkpoint``
    (tensors and plain types only, not sharded) as ``state.pth`` by rank 0.

    Every rank of ``process_group`` (a group used for nothing else, so that an asynchronous
    save's collectives never meet training's) calls it. With ``background`` the tensors are
    staged in memory before this returns and written by DCP's own thread; the barrier, the
    rename and ``then()`` (rank 0) follow once every rank has finished (the next save, the end of
    training and :func:`~minirunner.checkpoint.wait_for_checkpoint_writes` wait for it).
    """
    import torch.distributed as torch_dist
    import torch.distributed.checkpoint as dcp

    from minirunner import dist

    _COMMITS.wait()  # one save at a time: the pointer never goes back to an older one
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    distributed = torch_dist.is_initialized()
    rank = torch_dist.get_rank(process_group) if distributed else 0
    temporary = None
    if rank == 0:
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{name}.tmp-{_host_tag()}-{os.getpid()}")
        if os.path.lexists(temporary):
            _remove_dir(temporary)
        os.makedirs(temporary)
        save_checkpoint_file(checkpoint, os.path.join(temporary, STATE_FILE))
    temporary = dist.broadcast_object(temporary)
    writer = dcp.FileSystemWriter(temporary, sync_files=True)
    if background:
        future = dcp.async_save(tensors, storage_writer=writer, process_group=process_group, no_dist=not distributed)
    else:
        dcp.save(tensors, storage_writer=writer, process_group=process_group, no_dist=not distributed)
        future = None

    def commit() -> None:
        if future is not None:
            future.result()
        if distributed:
            torch_dist.barrier(group=process_group)  # every rank's shards are on disk
        if rank != 0:
            return
        if os.path.isdir(path) and not os.path.islink(path):
            _remove_dir(path)  # the same name saved again (e.g. the last checkpoint twice)
        os.replace(temporary, path)
        _fsync_folder(folder)
        if then is not None:
            then()

    if background:
        _COMMITS.start(commit)
    else:
        commit()


def holds_only_checkpoint_files(path: str) -> bool:
    """True when ``path`` is a real directory (not a link) holding only DCP's files and ours."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        entries = list(os.scandir(path))
    except OSError:
        return False
    return all(entry.is_file(follow_symlinks=False) and _OWN_FILE.fullmatch(entry.name) for entry in entries)


def _remove_dir(path: str) -> None:
    """Delete a checkpoint directory (or a temporary one) if it holds only checkpoint files."""
    if not holds_only_checkpoint_files(path):
        raise CheckpointError(f"not deleting {path}: it holds files that are not part of a checkpoint")
    shutil.rmtree(path)


def delete_checkpoint_dir(path: str, reason: str) -> bool:
    """Delete checkpoint directory ``path`` (already checked to be inside the run's folder)
    when it is one (it has DCP's metadata) holding only DCP's files and ours; a warning
    otherwise. True when deleted."""
    if not holds_only_checkpoint_files(path) or not os.path.isfile(os.path.join(path, METADATA_FILE)):
        print_log(f"not deleting {path}: it is not a checkpoint directory of ours", logger="current", level=logging.WARNING)
        return False
    shutil.rmtree(path)
    print_log(f"deleted {path} ({reason})", logger="current")
    return True
