"""Convert a checkpoint that needs full unpickling into a safe one.

    python tools/convert_checkpoint.py IN OUT --trust-source

Checkpoints of the reference engine (and others) pickle their own classes (history
buffers, config dicts, NumPy arrays), so ``torch.load(weights_only=True)``, the only way
minirunner loads files, refuses them. This tool unpickles IN once, which can run code
stored in it, and therefore only with ``--trust-source``; it writes OUT with the tensors
and plain Python values (weights, optimizer state, schedulers, meta) and reports what
it left out. OUT then works with ``load_from``, ``--resume PATH`` and ``tools/test.py``.

The reference engine need not be installed: its history buffers and config dicts are
unpickled into plain stand-ins (a history buffer becomes the state of minirunner's own), and
objects of other classes that cannot be imported here are left out. NumPy arrays become
tensors where NumPy is installed; without it they are left out, with a warning.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from minirunner.checkpoint import (  # noqa: E402
    CheckpointError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint_file,
    read_torch_file,
    save_checkpoint_file,
    verify_checkpoint,
)

_PLAIN = (bool, int, float, str, type(None), torch.dtype, torch.device)
_DROP = object()  # what to_plain returns for a value it leaves out
_NOT_NUMPY = object()
# The reference engine pickles arrays in its message hub; without NumPy they cannot be rebuilt.
_NO_NUMPY = "NumPy is not installed here"
_NUMPY_KINDS = {"_reconstruct": "a NumPy array", "scalar": "a NumPy scalar", "dtype": "a NumPy dtype"}


class _StandInType(type):
    """The metaclass of the stand-ins for the reference's classes and for unimportable ones.

    Pickle protocol 2 (torch.save's) stores a method such as ``HistoryBuffer.min`` as
    ``getattr(HistoryBuffer, 'min')``; on a stand-in that lookup gives a further stand-in.
    """

    qualified_name: str

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _missing_class(cls.qualified_name, name)


class _Missing(metaclass=_StandInType):
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
    return _StandInType(name, (_Missing, dict), {"qualified_name": f"{module}.{name}"})


class _DictLike(dict, metaclass=_StandInType):
    """The reference's ``ConfigDict`` (and addict's ``Dict`` below it): a dict, whichever way
    it was pickled (called with a dict, or filled by item calls and ``__setstate__``)."""

    qualified_name = "mmengine.config.ConfigDict"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, Mapping):
            self.update(state)


class _HistoryBuffer(metaclass=_StandInType):
    """The reference's ``HistoryBuffer``; keeps the pickled ``__dict__``, whose
    ``_log_history`` and ``_count_history`` are NumPy arrays (its ``statistics_methods``,
    references to its own methods, are not data)."""

    qualified_name = "mmengine.logging.HistoryBuffer"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


# Classes of the reference engine (and of the config library it builds on) by name; used in
# place of the real ones even where those are installed, so the result does not depend on it.
_STAND_INS: dict[str, type] = {"HistoryBuffer": _HistoryBuffer, "ConfigDict": _DictLike, "Dict": _DictLike}
_REFERENCE_PACKAGES = ("mmengine", "mmcv", "addict")


class _LenientUnpickler(pickle.Unpickler):
    """A full unpickler (code in the file runs) that replaces the reference's classes by
    plain stand-ins and unimportable classes by stubs."""

    def find_class(self, module: str, name: str) -> Any:
        if module.partition(".")[0] in _REFERENCE_PACKAGES and name in _STAND_INS:
            return _STAND_INS[name]
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
    if isinstance(value, _HistoryBuffer):
        return _history(value, where, dropped)
    if isinstance(value, _StandInType):  # a class or method of the reference's: code, not data
        dropped.append(f"{where} ({value.qualified_name})")
        return _DROP
    if isinstance(value, _Missing):
        if len(value):  # a dict-like class: its items are the content
            return _mapping(value, where, dropped)
        dropped.append(f"{where} ({_missing_reason(type(value).qualified_name)})")
        return _DROP
    converted = _from_numpy(value)  # before the plain types: numpy.float64 subclasses float
    if converted is not _NOT_NUMPY:
        return converted
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
    dropped.append(f"{where} ({type(value).__module__}.{type(value).__qualname__})")
    return _DROP


def _missing_reason(qualified_name: str) -> str:
    module, _, name = qualified_name.rpartition(".")
    if module.partition(".")[0] == "numpy" and importlib.util.find_spec("numpy") is None:
        return f"{_NUMPY_KINDS.get(name, qualified_name)}; {_NO_NUMPY}"
    return qualified_name


def _from_numpy(value: Any) -> Any:
    """A NumPy array as a tensor, a NumPy scalar as a Python value, a dtype as its name;
    ``_DROP`` for NumPy values that have none (object arrays, dates), ``_NOT_NUMPY`` for
    anything else."""
    numpy = sys.modules.get("numpy")  # loaded if the file held NumPy values and NumPy is installed
    if numpy is None or not isinstance(value, (numpy.ndarray, numpy.generic, numpy.dtype)):
        return _NOT_NUMPY
    if isinstance(value, numpy.dtype):
        return str(value)
    if isinstance(value, numpy.generic) or value.ndim == 0:
        item = value.item()
        return item if isinstance(item, _PLAIN) else _DROP
    try:
        return torch.as_tensor(value.copy())
    except (TypeError, ValueError, RuntimeError):
        return _DROP


def _history(buffer: _HistoryBuffer, where: str, dropped: list[str]) -> Any:
    """The reference's history buffer in the form of minirunner's ``HistoryBuffer.state_dict()``,
    so that a resume restores the log history."""
    inside: list[str] = []
    values = to_plain(buffer.state.get("_log_history"), f"{where}._log_history", inside)
    counts = to_plain(buffer.state.get("_count_history"), f"{where}._count_history", inside)
    if inside or not isinstance(values, torch.Tensor) or not isinstance(counts, torch.Tensor):
        reason = inside[0].partition(" (")[2].rstrip(")") if inside else "no history arrays"
        dropped.append(f"{where} (a HistoryBuffer: {reason})")
        return _DROP
    max_length = int(buffer.state.get("max_length", 1_000_000))
    return {"values": values.tolist(), "counts": counts.tolist(), "max_length": max_length}


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


def convert(source: str, destination: str, verify: bool = True) -> list[str]:
    """Unpickle ``source`` (code in it may run) and write the safe part to ``destination``.

    With ``verify`` the file is first checked against its CRC-32s. Returns the paths of the
    values left out.

    Raises:
        CorruptCheckpointError: ``source`` is truncated or damaged.
        CheckpointError: ``source`` cannot be unpickled or holds no weights.
    """
    if verify:
        verify_checkpoint(source)
    try:
        loaded = read_torch_file(source, lambda: torch.load(
            source, map_location="cpu", weights_only=False, pickle_module=_LENIENT_PICKLE
        ))
    except pickle.UnpicklingError as error:
        # Unlike a weights_only load, a full unpickle refuses nothing: the stream is broken
        # (a damaged zip directory can hand torch the wrong bytes although every CRC matches).
        raise CorruptCheckpointError(
            f"{source} is truncated or damaged: its pickle cannot be read ({error})"
        ) from None
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
        # The CRC check first, so that a damaged file is reported as such on either path.
        verify_checkpoint(args.source)
        try:
            checkpoint = load_checkpoint_file(args.source, verify=False)
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
            dropped = convert(args.source, args.destination, verify=False)
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
    if any(_NO_NUMPY in item for item in dropped):
        print(f"warning: {_NO_NUMPY}, so the NumPy values listed above (such as the message hub's log "
              "history) were left out; to keep them, install NumPy and convert again", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
