"""Checkpoint helpers for user code: load weights into a model, save a checkpoint, state dicts.

These are the functions MMEngine exports from ``mmengine.runner`` (``load_checkpoint``,
``save_checkpoint``, ``load_state_dict``, ``get_state_dict``, ``weights_to_cpu``,
``find_latest_checkpoint``), with our file rules: every load goes through
:func:`~minirunner.checkpoint.load_checkpoint_file` (``torch.load(weights_only=True)``, after a
CRC-32 check), every save is atomic, and a file name must be a local path (download a URL first).
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn

from minirunner import dist
from minirunner.checkpoint import (
    CheckpointError,
    find_latest_checkpoint,
    load_checkpoint_file,
    save_checkpoint_file,
)
from minirunner.logging import print_log
from minirunner.model.wrappers import is_model_wrapper

__all__ = [
    "RemoteCheckpointError", "find_latest_checkpoint", "get_state_dict", "load_checkpoint",
    "load_state_dict", "local_checkpoint_path", "revise_state_dict_keys", "save_checkpoint",
    "strip_compile_levels", "weights_to_cpu",
]

# MMEngine's default: strip the ``module.`` that DataParallel/DDP put in front of every key.
DEFAULT_REVISE_KEYS: list[tuple[str, str]] = [(r"^module\.", "")]

# The ``_orig_mod.`` that a model wrapped by ``torch.compile(model)`` puts in front of its keys
# (at any depth, when a submodule was compiled). Our runner compiles in place and never writes
# it; files from other tools may hold it.
_COMPILED_LEVEL = re.compile(r"(?:^|(?<=\.))_orig_mod\.")


class RemoteCheckpointError(CheckpointError, ValueError):
    """A checkpoint was named by a URL; minirunner reads local files only."""


def local_checkpoint_path(filename: Any, what: str = "filename") -> str:
    """``filename`` as a path string; a URL raises :class:`RemoteCheckpointError` saying to
    download it first (we never fetch and unpickle remote files)."""
    path = os.fspath(filename)
    if "://" in path or path.startswith(("http:", "https:", "s3:", "open-mmlab:", "torchvision:", "modelzoo:")):
        raise RemoteCheckpointError(
            f"{what} {path} is a URL; minirunner loads local files only. Download it first "
            f"(e.g. `wget {path}`) and pass the downloaded file's path"
        )
    return path


def weights_to_cpu(state_dict: dict) -> OrderedDict:
    """A copy of ``state_dict`` with every tensor on the CPU (its ``_metadata`` kept)."""
    moved = OrderedDict((key, value.cpu() if isinstance(value, torch.Tensor) else value) for key, value in state_dict.items())
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        moved._metadata = metadata  # type: ignore[attr-defined]
    return moved


def get_state_dict(
    module: nn.Module, destination: OrderedDict | None = None, prefix: str = "", keep_vars: bool = False
) -> OrderedDict:
    """``module.state_dict()`` with model wrappers (DDP and the registered ones) taken off,
    at the top and at any depth, so the keys are those of the plain model.

    Args:
        destination: a dict to add the entries to (a new OrderedDict when None).
        prefix: put in front of every key.
        keep_vars: keep parameters as ``Parameter`` objects (not detached tensors).
    """
    while _is_wrapper(module):
        module = module.module
    # Where a wrapper sits inside the model, its ``module.`` level is dropped from the keys.
    inner = sorted((name for name, sub in module.named_modules() if name and _is_wrapper(sub)), key=len, reverse=True)
    if not inner:
        return module.state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
    state = module.state_dict(prefix=prefix, keep_vars=keep_vars)
    renamed: OrderedDict = OrderedDict() if destination is None else destination
    for key, value in state.items():
        for name in inner:
            wrapped = f"{prefix}{name}.module."
            if key.startswith(wrapped):
                key = f"{prefix}{name}." + key[len(wrapped) :]
                break
        renamed[key] = value
    metadata = getattr(state, "_metadata", None)
    if metadata is not None and not hasattr(renamed, "_metadata"):
        renamed._metadata = metadata  # type: ignore[attr-defined]
    return renamed


def _is_wrapper(module: nn.Module) -> bool:
    return isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)) or is_model_wrapper(module)


def load_state_dict(module: nn.Module, state_dict: dict, strict: bool = False, logger: Any = None) -> None:
    """Copy ``state_dict`` into ``module``, reporting what did not match.

    Unlike ``nn.Module.load_state_dict`` with ``strict=False``, a tensor whose shape differs
    from the model's is skipped (the model keeps its own) instead of raising. Missing keys
    (``num_batches_tracked`` of BatchNorm layers are not counted), unexpected keys and shape
    mismatches are reported in one message: a warning (``logger``: a logger, ``'current'``,
    ``'silent'`` or None for print) on rank 0, or with ``strict=True`` a ``RuntimeError``.
    """
    while _is_wrapper(module):
        module = module.module
    state_dict = strip_compile_levels(state_dict)
    own = get_state_dict(module, keep_vars=True)
    loadable, mismatched = OrderedDict(), {}
    for key, value in state_dict.items():
        target = own.get(key)
        if isinstance(value, torch.Tensor) and isinstance(target, torch.Tensor) and value.shape != target.shape:
            mismatched[key] = (tuple(value.shape), tuple(target.shape))
        else:
            loadable[key] = value
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        loadable._metadata = metadata  # type: ignore[attr-defined]
    result = module.load_state_dict(loadable, strict=False)
    # A skipped tensor was in the checkpoint: it is reported as a mismatch, not as missing.
    missing = [key for key in result.missing_keys if "num_batches_tracked" not in key and key not in mismatched]
    problems = []
    if result.unexpected_keys:
        problems.append("unexpected key in source state_dict: " + ", ".join(result.unexpected_keys))
    if missing:
        problems.append("missing keys in source state_dict: " + ", ".join(missing))
    problems += [
        f"size mismatch for {key}: copying a param with shape {saved} from checkpoint, "
        f"the shape in current model is {current}."
        for key, (saved, current) in mismatched.items()
    ]
    if not problems or dist.get_rank() != 0:
        return
    message = "The model and loaded state dict do not match exactly\n" + "\n".join(problems)
    if strict:
        raise RuntimeError(message)
    print_log(message, logger=logger, level=logging.WARNING)


def revise_state_dict_keys(state_dict: dict, revise_keys: Sequence[tuple[str, str]]) -> OrderedDict:
    """Rename every key with each ``(pattern, replacement)`` of ``revise_keys`` in turn
    (``re.sub``), after taking out the ``_orig_mod.`` levels of a ``torch.compile`` wrapper
    (so ``_orig_mod.module.x`` meets the default ``^module\\.`` pattern as ``module.x``);
    ``_metadata`` is kept."""
    metadata = getattr(state_dict, "_metadata", None)
    revised = strip_compile_levels(state_dict)
    for pattern, replacement in revise_keys:
        compiled = re.compile(pattern)
        revised = OrderedDict((compiled.sub(replacement, key), value) for key, value in revised.items())
    if metadata is not None:
        revised._metadata = metadata  # type: ignore[attr-defined]
    return revised


def strip_compile_levels(state_dict: dict) -> OrderedDict:
    """A copy of ``state_dict`` without the ``_orig_mod.`` levels that ``torch.compile(model)``
    puts in its keys (``_orig_mod.fc.weight`` -> ``fc.weight``, ``backbone._orig_mod.conv.weight``
    -> ``backbone.conv.weight``); the module names of its ``_metadata`` are renamed alike."""
    stripped = OrderedDict((_COMPILED_LEVEL.sub("", key), value) for key, value in state_dict.items())
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        stripped._metadata = OrderedDict(  # type: ignore[attr-defined]
            (_COMPILED_LEVEL.sub("", key + ".").rstrip(".") if key else key, value) for key, value in metadata.items()
        )
    return stripped


def load_checkpoint(
    model: nn.Module,
    filename: str,
    map_location: Any = None,
    strict: bool = False,
    logger: Any = None,
    revise_keys: Sequence[tuple[str, str]] = DEFAULT_REVISE_KEYS,
) -> dict:
    """Load the weights of checkpoint ``filename`` into ``model`` and return the checkpoint.

    The file is read with ``torch.load(weights_only=True)``; a file that needs a full
    unpickle is refused (``tools/convert_checkpoint.py`` converts it once). The weights are
    ``checkpoint['state_dict']`` when present, else the whole file; their keys are renamed
    with ``revise_keys`` (by default a leading ``module.`` is removed) and loaded with
    :func:`load_state_dict` (``strict``, ``logger``).

    Args:
        map_location: where tensors are loaded (None: the CPU).

    Example:
        >>> checkpoint = load_checkpoint(model, 'work_dirs/x/epoch_3.pth')  # doctest: +SKIP
    """
    path = local_checkpoint_path(filename)
    checkpoint = load_checkpoint_file(path, map_location="cpu" if map_location is None else map_location)
    state_dict = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: 'state_dict' holds a {type(state_dict).__name__}, not a dict of tensors")
    load_state_dict(model, revise_state_dict_keys(state_dict, revise_keys), strict=strict, logger=logger)
    return checkpoint


def save_checkpoint(checkpoint: dict, filename: str) -> None:
    """Save ``checkpoint`` to ``filename`` atomically (temporary file, fsync, rename).

    It must hold tensors and plain Python types only, so that the safe loader reads it back.
    """
    save_checkpoint_file(checkpoint, local_checkpoint_path(filename))
