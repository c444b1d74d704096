"""Safe checkpoint loads: ``torch.load(weights_only=True)`` after a CRC-32 check, with every way
a damaged file can fail turned into one :class:`CorruptCheckpointError`."""

from __future__ import annotations

import os
import pickle
import re
from typing import Any, Callable

import torch

from .errors import CheckpointError, CorruptCheckpointError, UnsafeCheckpointError
from .verify import verify_checkpoint

CONVERT_TOOL = "tools/convert_checkpoint.py"


def check_checkpoint_path(path: str) -> None:
    """Raise ``FileNotFoundError`` (a message naming ``path``) unless it is an existing file."""
    if os.path.isdir(path):
        raise FileNotFoundError(f"{path} is a directory, not a checkpoint file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")


def read_torch_file(path: str, load: Callable[[], Any]) -> Any:
    """Run ``load()`` (a ``torch.load`` of ``path``), reporting a damaged file as
    :class:`CorruptCheckpointError`.

    A file whose records pass their CRC-32s can still have a damaged zip directory (about
    one in seven single-bit flips near its end): torch then raises one of a dozen
    ``RuntimeError``s, or a ``ValueError``. Errors that say nothing about the file (a
    missing CUDA device for ``map_location``) pass through unchanged.
    """
    try:
        return load()
    except pickle.UnpicklingError:
        raise
    except (RuntimeError, ValueError, EOFError, KeyError, IndexError) as error:
        message = str(error)
        if "deserialize object on" in message or "CUDA" in message:
            raise
        first_line = message.strip().splitlines()[0][:160] if message.strip() else type(error).__name__
        raise CorruptCheckpointError(f"{path} is truncated or damaged: torch cannot read it ({first_line})") from None


def load_checkpoint_file(path: str, map_location: Any = "cpu", verify: bool = True) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``: no code in it can run.

    With ``verify`` (the default) the file is first checked against its CRC-32s.

    Raises:
        FileNotFoundError: there is no such file (or it is a directory).
        CorruptCheckpointError: the file is truncated or damaged.
        UnsafeCheckpointError: the file holds Python objects that only a full unpickle
            could restore (a checkpoint of another framework); the message names
            ``tools/convert_checkpoint.py``, which converts it.
    """
    from .sharded import is_checkpoint_dir, load_checkpoint_dir

    if is_checkpoint_dir(path):
        return load_checkpoint_dir(path, verify=verify)
    check_checkpoint_path(path)
    if verify:
        verify_checkpoint(path)
    try:
        checkpoint = read_torch_file(path, lambda: torch.load(path, map_location=map_location, weights_only=True))
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
