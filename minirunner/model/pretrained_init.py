"""The ``Pretrained`` initializer: weights from a checkpoint file, loaded safely.

The file is read with :func:`minirunner.checkpoint.load_checkpoint_file`
(``torch.load(weights_only=True)``), so a checkpoint that pickles Python objects is refused
with the command that converts it, never unpickled.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch
from torch import nn

from minirunner.checkpoint import load_checkpoint_file
from minirunner.logging import print_log
from minirunner.utils import ConfigError

from .weight_init import WEIGHT_INITIALIZERS

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def _state_dict_of(checkpoint: dict) -> dict[str, Any]:
    state_dict = checkpoint.get("state_dict", checkpoint)
    # Weights saved from a DDP-wrapped model carry 'module.' in front of every name.
    return {re.sub(r"^module\.", "", key): value for key, value in state_dict.items()}


def load_pretrained_state_dict(
    checkpoint: str, prefix: str | None = None, map_location: Any = "cpu"
) -> dict[str, Any]:
    """The state dict of a checkpoint file, or of its part under ``prefix``.

    Args:
        checkpoint: a local checkpoint path (URLs and ``torchvision://`` names are not
            downloaded: fetch the file first).
        prefix: e.g. ``'backbone.'`` keeps only the keys starting with it, with the prefix
            removed (a missing trailing dot is added).
        map_location: where tensors are loaded, as for ``torch.load``.
    """
    if not isinstance(checkpoint, str):
        raise ConfigError(f"must be a file path, got {checkpoint!r}", key="checkpoint")
    if _URL.match(checkpoint):
        raise ConfigError(
            f"{checkpoint!r} is a URL; minirunner loads local files only. Download it and "
            "give its path (convert it with tools/convert_checkpoint.py if it is refused)",
            key="checkpoint",
        )
    state_dict = _state_dict_of(load_checkpoint_file(checkpoint, map_location=map_location))
    if prefix is None:
        return state_dict
    if not prefix.endswith("."):
        prefix += "."
    selected = {
        key[len(prefix):]: value for key, value in state_dict.items() if key.startswith(prefix)
    }
    if not selected:
        raise ConfigError(
            f"no weights in {checkpoint} start with {prefix!r}; check the prefix (keys look "
            f"like {sorted(state_dict)[:3]})",
            key="prefix",
        )
    return selected


def load_state_dict_non_strict(module: nn.Module, state_dict: dict[str, Any]) -> None:
    """Load the entries of ``state_dict`` whose names and shapes match ``module``; log the
    missing, unexpected and mismatched keys as a warning instead of failing."""
    own = module.state_dict()
    mismatched = [
        f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}"
        for key, value in state_dict.items()
        if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape
    ]
    usable = {
        key: value for key, value in state_dict.items()
        if not (key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape)
    }
    result = module.load_state_dict(usable, strict=False)
    problems = []
    if result.unexpected_keys:
        problems.append(f"unexpected keys in the checkpoint: {', '.join(result.unexpected_keys)}")
    if mismatched:
        problems.append(f"skipped for a shape mismatch: {'; '.join(mismatched)}")
    if result.missing_keys:
        problems.append(f"missing in the checkpoint: {', '.join(result.missing_keys)}")
    if problems:
        print_log("\n".join(problems), logger="current", level=logging.WARNING)


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class PretrainedInit:
    """Initialise a module from a checkpoint (non-strict: mismatches are logged).

    Args:
        checkpoint: path of the checkpoint file; its ``state_dict`` entry is used when it
            has one, else the whole dict.
        prefix: load only the weights under this prefix (``'backbone.'``), without it.
        map_location: where tensors are loaded. Defaults to ``'cpu'``.

    Example:
        >>> init_cfg = dict(type='Pretrained', checkpoint='work_dirs/x/epoch_10.pth',
        ...                 prefix='backbone.')  # doctest: +SKIP
    """

    def __init__(
        self, checkpoint: str, prefix: str | None = None, map_location: Any = "cpu"
    ) -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location
        # Set by `initialize`; a checkpoint always loads into the module it is given.
        self.wholemodule = False

    def __call__(self, module: nn.Module) -> None:
        """Load the weights into ``module``."""
        where = f"{self.prefix} in model " if self.prefix else "model "
        print_log(f"load {where}from: {self.checkpoint}", logger="current")
        state_dict = load_pretrained_state_dict(self.checkpoint, self.prefix, self.map_location)
        load_state_dict_non_strict(module, state_dict)

    def __repr__(self) -> str:
        return f"PretrainedInit(checkpoint={self.checkpoint!r}, prefix={self.prefix!r})"
