"""Convert a checkpoint that needs full unpickling into a safe one.

    python tools/convert_checkpoint.py IN OUT --trust-source

Checkpoints of the reference engine (and others) pickle their own classes (history
buffers, config dicts, NumPy arrays), so ``torch.load(weights_only=True)``, the only way
minirunner loads files, refuses them. This tool unpickles IN once, which can run code
stored in it, and therefore only with ``--trust-source``; it writes OUT with the tensors
and plain Python values (weights, optimizer state, schedulers, meta) and reports what
it left out. OUT then works with ``load_from``, ``--resume PATH`` and ``tools/test.py``.
Classes that cannot be imported here are not needed: their objects are left out.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import sys
import types
import warnings
from collections.abc import Mapping
from typing import Any

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The CPU torch wheel comes without NumPy and warns about it on import; nothing here needs it.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from minirunner.runner.checkpoint import (  # noqa: E402
    CheckpointError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    save_checkpoint_file,
)

_PLAIN = (bool, int, float, str, type(None), torch.dtype, torch.device)
_DROP = object()  # what to_plain returns for a value it leaves out


class _Missing:
    """Stands in for an object whose class cannot be imported here; keeps what it was given.

    A dict subclass, so dict-like classes (config dicts) fill it through the pickle's
    item calls and convert as dicts.
    """

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _missing_class(module: str, name: str) -> type:
    return type(name, (_Missing, dict), {"qualified_name": f"{module}.{name}"})


class _LenientUnpickler(pickle.Unpickler):
    """A full unpickler (code in the file runs) that replaces unimportable classes by stubs."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _missing_class(module, name)


# torch.load takes a module-like object with these names for its unpickling.
_LENIENT_PICKLE = types.ModuleType("minirunner_lenient_pickle")
_LENIENT_PICKLE.Unpickler = _LenientUnpickler
_LENIENT_PICKLE.load = lambda handle, **kwargs: _LenientUnpickler(handle, **kwargs).load()
_LENIENT_PICKLE.__dict__["UnpicklingError"] = pickle.UnpicklingError


def to_plain(value: Any, where: str, dropped: list[str]) -> Any:
    """``value`` with only tensors and plain Python values; what cannot be kept is left out
    and its path appended to ``dropped``. Returns ``_DROP`` for a value left out entirely."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, _Missing):
        if len(value):  # a dict-like class: its items are the content
            return _mapping(value, where, dropped)
        dropped.append(f"{where} ({type(value).qualified_name})")
        return _DROP
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, Mapping):
        return _mapping(value, where, dropped)
    if isinstance(value, (list, tuple)):
        items = [to_plain(item, f"{where}[{index}]", dropped) for index, item in enumerate(value)]
        items = [item for item in items if item is not _DROP]
        return items if isinstance(value, list) else tuple(items)
    if type(value).__module__ == "numpy":  # an array or a NumPy scalar
        try:
            return torch.as_tensor(value.copy()) if getattr(value, "ndim", 0) else value.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    dropped.append(f"{where} ({type(value).__module__}.{type(value).__qualname__})")
    return _DROP



def _mapping(value: Mapping, where: str, dropped: list[str]) -> dict:
    result = {}
    for key, item in value.items():
        path = f"{where}.{key}" if where else str(key)
        if not isinstance(key, (str, int)):
            dropped.append(f"{path} (key of type {type(key).__name__})")
            continue
        converted = to_plain(item, path, dropped)
        if converted is not _DROP:
            result[key] = converted
    return result


def convert(source: str, destination: str) -> list[str]:
    """Unpickle ``source`` (code in it may run) and write the safe part to ``destination``.

    Returns the paths of the values left out.
    """
    loaded = torch.load(source, map_location="cpu", weights_only=False, pickle_module=_LENIENT_PICKLE)
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{source} does not hold a dict (found {type(loaded).__name__})")
    dropped: list[str] = []
    checkpoint = {}
    for key, value in loaded.items():
        inside: list[str] = []
        converted = to_plain(value, str(key), inside)
        if inside and key != "meta":
            # A half-kept optimizer or message hub state would mislead a resume: all or nothing.
            dropped.append(f"{key} (all of it; it holds {', '.join(inside)})")
        elif converted is not _DROP:
            checkpoint[key] = converted
            dropped += inside
    if "state_dict" not in checkpoint:
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            checkpoint = {"state_dict": checkpoint}  # a bare state dict of weights
        else:
            raise CheckpointError(f"{source} has no 'state_dict' (keys: {', '.join(map(str, checkpoint))})")
    meta = checkpoint.setdefault("meta", {})
    if isinstance(meta, dict):
        meta["converted_from"] = os.path.abspath(source)
    save_checkpoint_file(checkpoint, destination)
    load_checkpoint_file(destination)  # proves it loads with weights_only=True
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Turn a checkpoint that needs full unpickling into a safe one.")
    parser.add_argument("source", metavar="IN", help="the checkpoint to convert")
    parser.add_argument("destination", metavar="OUT", help="where to write the safe checkpoint")
    parser.add_argument(
        "--trust-source", action="store_true",
        help="unpickle IN in full; this runs any code stored in it, so only for files from a source you trust",
    )
    args = parser.parse_args(argv)
    if not os.path.isfile(args.source):
        print(f"error: {args.source} does not exist", file=sys.stderr)
        return 2
    try:
        try:
            checkpoint = load_checkpoint_file(args.source)
        except UnsafeCheckpointError as error:
            if not args.trust_source:
                found = re.search(r"it pickles ([\w.]+)", str(error))
                what = f" such as {found.group(1)}" if found else ""
                print(
                    f"error: {args.source} holds pickled Python objects{what}, and unpickling them can run "
                    "code stored in the file; nothing was loaded. If you trust where the file comes from, "
                    f"run again with --trust-source:\n  python tools/convert_checkpoint.py {args.source} "
                    f"{args.destination} --trust-source",
                    file=sys.stderr,
                )
                return 2
            dropped = convert(args.source, args.destination)
        else:
            print(f"{args.source} is already a safe checkpoint (it loads with weights_only=True); copying it")
            save_checkpoint_file(checkpoint, args.destination)
            dropped = []
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.destination}: loads with weights_only=True")
    if dropped:
        print("left out (not tensors or plain values):\n  " + "\n  ".join(dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
