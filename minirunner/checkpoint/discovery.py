"""Finding the checkpoint to resume from in a work dir (``resume='auto'``).

Candidates are the ``*.pth`` files of the run's own folders (the work dir, and the checkpoint
folder under ``out_dir`` when one is set), never ``best_*`` side copies. When
``last_checkpoint`` names a readable checkpoint inside those folders, only checkpoints of its
run (the same ``run_id``) compete, so the leftovers of an earlier, longer run in the same
folder are not taken; otherwise every verifying checkpoint does. The highest saved
(iter, epoch) wins, the pointer's file winning ties. A damaged file is reported and skipped in
favour of the previous one.
"""

from __future__ import annotations

import glob
import logging
import os
import pickle
import re
from typing import Any

import torch

from minirunner.logging import print_log

from .errors import CheckpointError, CorruptCheckpointError
from .load import CONVERT_TOOL, load_checkpoint_file
from .pointer import read_last_checkpoint
from .sharded import METADATA_FILE, STATE_FILE
from .verify import verify_checkpoint


def _candidate_paths(work_dir: str, folders: list[str]) -> tuple[list[str], str | None]:
    pointer = read_last_checkpoint(work_dir, folders)
    paths = []
    for folder in dict.fromkeys(os.path.abspath(f) for f in [work_dir, *folders]):
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.pth"))):
            # best_*.pth are side copies without the optimizer: never resumed from.
            if not os.path.basename(path).startswith("best_") and os.path.isfile(path):
                paths.append(path)
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*_*", METADATA_FILE))):
            path = os.path.dirname(path)  # a sharded checkpoint directory
            if re.fullmatch(r"(epoch|iter)_\d+", os.path.basename(path)) and not os.path.islink(path):
                paths.append(path)
    if pointer is not None and os.path.exists(pointer) and pointer not in paths:
        paths.append(pointer)
    return paths, pointer


def _header(path: str) -> tuple[dict | None, str]:
    """The counters and run id saved in ``path``, read without loading its tensors, or
    None and why not."""
    if os.path.isdir(path):  # a sharded checkpoint: its counters are in its state file
        path = os.path.join(path, STATE_FILE)
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
    try:
        header = {"iter": int(loop.get("iter", 0)), "epoch": int(loop.get("epoch", 0)), "run_id": meta.get("run_id")}
    except (TypeError, ValueError):
        return None, "its epoch or iteration counter is not a number"
    return header, ""


def read_run_id(path: str) -> str | None:
    """The run id saved in checkpoint ``path`` (read without loading its tensors), or None
    when it has none or cannot be read."""
    header, _ = _header(path)
    return None if header is None else header["run_id"]


def _ordered_candidates(work_dir: str, folders: list[str]) -> list[str]:
    """Resumable files, newest first (see the module's docstring).

    Files that cannot be read are reported here (those named like checkpoints, or the
    pointer's), since their counters are unknown.
    """
    paths, pointer = _candidate_paths(work_dir, folders)
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


def load_latest_checkpoint(
    work_dir: str, map_location: Any = "cpu", folders: list[str] | None = None
) -> tuple[str, dict] | None:
    """The newest checkpoint of ``work_dir`` that verifies and loads, as ``(path, checkpoint)``.

    ``folders`` are the run's other checkpoint folders (under ``out_dir``). Damaged files
    are reported and skipped. Returns None when nothing loads.
    """
    for path in _ordered_candidates(work_dir, list(folders or [])):
        try:
            return path, load_checkpoint_file(path, map_location=map_location)
        except CheckpointError as error:
            _report_skipped(path, str(error))
    return None


def find_latest_checkpoint(work_dir: str, folders: list[str] | None = None) -> str | None:
    """The path of the newest checkpoint of ``work_dir`` that passes its CRC-32 check.

    See :func:`load_latest_checkpoint`. Returns None when there is none.
    """
    for path in _ordered_candidates(work_dir, list(folders or [])):
        try:
            verify_checkpoint(path)
        except CorruptCheckpointError as error:
            _report_skipped(path, str(error))
            continue
        return path
    return None


def _looks_like_checkpoint_name(path: str) -> bool:
    return re.fullmatch(r"(epoch|iter)_\d+(\.pth)?", os.path.basename(path)) is not None
