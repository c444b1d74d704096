"""The ``last_checkpoint`` pointer: a small file in the work dir naming the newest checkpoint.

It holds the checkpoint's path relative to the work dir (``epoch_3.pth``), so a work dir that
is copied or moved still points at its own files. A checkpoint kept under ``out_dir`` (outside
the work dir) is named by its absolute path. What the pointer names is trusted only when it
is a file inside one of the run's own folders; anything else is ignored with a warning.
"""

from __future__ import annotations

import logging
import os

from minirunner.logging import print_log

from .atomic import atomic_write
from .ownership import is_inside, resolve_stored_name, stored_name

LAST_CHECKPOINT = "last_checkpoint"


def write_last_checkpoint(work_dir: str, checkpoint_path: str) -> None:
    """Point ``<work_dir>/last_checkpoint`` at ``checkpoint_path`` (atomically)."""
    target = os.path.abspath(checkpoint_path)
    if is_inside(target, work_dir):
        target = stored_name(work_dir, target)
    atomic_write(os.path.join(work_dir, LAST_CHECKPOINT), lambda handle: handle.write(target.encode()))


def read_last_checkpoint(work_dir: str, folders: list[str] | None = None) -> str | None:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, or None.

    A relative name is taken inside ``work_dir``; an absolute path (written for an
    ``out_dir``) only when it lies inside ``work_dir`` or one of ``folders``. A pointer that
    cannot be read, is not UTF-8, or names anything else is ignored with a warning.
    """
    pointer = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(pointer):
        return None
    try:
        with open(pointer, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        _ignore(pointer, f"it cannot be read as UTF-8 text ({error.__class__.__name__})")
        return None
    if not text:
        return None
    if not os.path.isabs(text):
        return resolve_stored_name(work_dir, text, f"{pointer}, which names")
    for folder in [work_dir, *(folders or [])]:
        if is_inside(text, folder):
            return os.path.abspath(text)
    _ignore(pointer, f"it names {text}, outside this run's folders")
    return None


def _ignore(pointer: str, reason: str) -> None:
    print_log(
        f"resume: ignoring {pointer}: {reason}; looking for the newest checkpoint in the work dir instead",
        logger="current",
        level=logging.WARNING,
    )
