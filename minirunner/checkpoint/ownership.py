"""What a run may delete: the one rule, in one place.

A run owns its checkpoint folders (the work dir, or ``<out_dir>/<work dir name>`` when a
``CheckpointHook`` sets ``out_dir``) and deletes or replaces only what it wrote there: the
checkpoint files its own ``CheckpointHook`` state names, its temporary files,
``last_checkpoint``, its lock file and its config dump. State read back from a checkpoint or a
pointer file is untrusted input (anyone can edit a checkpoint and it still loads), so every
name in it is stored relative to its folder and checked here before it is acted on: an
absolute path, a ``..`` or a symbolic link leading out of the folder is ignored with a
warning. Every deletion is logged.
"""

from __future__ import annotations

import logging
import os
import re
import stat

from minirunner.logging import print_log

from .verify import ZIP_LOCAL_HEADER

_PICKLE_START = b"\x80"  # torch's legacy (non-zip) format is a plain pickle


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies inside ``folder``, symbolic links in its parent folders resolved.

    The last component is not resolved: a link there is judged as the link itself (and never
    deleted through, see :func:`delete_checkpoint`).
    """
    parent = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    root = os.path.realpath(folder)
    return parent == root or parent.startswith(root.rstrip(os.sep) + os.sep)


def resolve_stored_name(folder: str, name: object, what: str) -> str | None:
    """The path of ``name``, read from stored state, inside ``folder``; None (with a warning)
    when it is not a relative name that stays inside ``folder``.

    Args:
        folder: the folder the name is relative to (a checkpoint folder of this run).
        name: what the state holds.
        what: how to call it in the warning, e.g. ``"the CheckpointHook state entry"``.
    """
    reason = _why_not_a_stored_name(name)
    if reason is None:
        path = os.path.join(folder, str(name))
        if is_inside(path, folder):
            return os.path.abspath(path)
        reason = "leads out of the folder through a symbolic link"
    print_log(
        f"ignoring {what} {name!r}: it {reason}; a run only acts on files inside its own folder {folder}",
        logger="current",
        level=logging.WARNING,
    )
    return None


def _why_not_a_stored_name(name: object) -> str | None:
    if not isinstance(name, str) or not name or "\0" in name:
        return "is not a file name"
    if os.path.isabs(name) or name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "is an absolute path (stored names are relative to their folder)"
    if ".." in re.split(r"[\\/]", name):
        return "climbs out of its folder with '..'"
    return None


def stored_name(folder: str, path: str) -> str:
    """The name to store for ``path``, a file this run writes inside ``folder``."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))


def delete_checkpoint(folder: str, name: object, reason: str, what: str = "the CheckpointHook state entry") -> bool:
    """Delete the checkpoint ``name`` (relative to ``folder``), logging it; True when deleted.

    Nothing happens (with a warning) when ``name`` does not stay inside ``folder``, or names a
    symbolic link, a folder or a file that is not a checkpoint. A file already gone is fine.

    Args:
        folder: a checkpoint folder of this run.
        name: the name this run's state holds for the file.
        reason: why it goes, for the log line (e.g. ``"max_keep_ckpts=2"``).
        what: how to call ``name`` in a warning.
    """
    path = resolve_stored_name(folder, name, what)
    if path is None:
        return False
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    problem = None
    if stat.S_ISDIR(mode):
        from .sharded import delete_checkpoint_dir  # a sharded checkpoint

        return delete_checkpoint_dir(path, reason)
    if not stat.S_ISREG(mode):
        problem = "is not a regular file"
    else:
        with open(path, "rb") as handle:
            start = handle.read(4)
        if start != ZIP_LOCAL_HEADER and not start.startswith(_PICKLE_START):
            problem = "is not a checkpoint file"
    if problem is not None:
        print_log(f"not deleting {path}: it {problem}", logger="current", level=logging.WARNING)
        return False
    os.remove(path)
    print_log(f"deleted {path} ({reason})", logger="current")
    return True
