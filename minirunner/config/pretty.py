"""Writing a config back out as Python source that loads to an equal config."""

from __future__ import annotations

import keyword
import math
import sys
from typing import Any

from minirunner.utils import ConfigError

_WIDTH = 88
_INDENT = "    "


def format_python(cfg: dict) -> str:
    """Render ``cfg`` as a ``.py`` config: one ``key = value`` statement per top-level key."""
    lines = []
    for key, value in cfg.items():
        if not _is_identifier(key):
            raise ConfigError(
                f"the top-level key {key!r} cannot be written to a .py config (not a Python "
                "name); rename it or dump to .json"
            )
        lines.append(f"{key} = {_format(value, 0, len(key) + 3, key)}")
    return "\n".join(lines) + "\n"


def to_plain_data(value: Any, key: str = "") -> Any:
    """Convert classes and functions to import paths so a config can be written as JSON/YAML."""
    if isinstance(value, dict):
        return {k: to_plain_data(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain_data(v, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if callable(value) and hasattr(value, "__qualname__"):
        return import_path(value)
    raise ConfigError(
        f"{type(value).__name__} values cannot be written to a config file; use a string or number",
        key=key or None,
    )


def _is_identifier(key: Any) -> bool:
    return isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)


def import_path(obj: Any) -> str:
    """``'package.module.Name'`` for a class or function: what a dump writes for it.

    The shortest already-imported package that exposes the object is used, so
    ``torch.optim.SGD`` is written as such rather than as ``torch.optim.sgd.SGD``; both
    import back to the same class.
    """
    module = getattr(obj, "__module__", None) or "?"
    qualname = obj.__qualname__
    parts = module.split(".")
    for end in range(1, len(parts)):
        found: Any = sys.modules.get(".".join(parts[:end]))
        for attr in qualname.split("."):
            found = getattr(found, attr, None)
        if found is obj:
            return f"{'.'.join(parts[:end])}.{qualname}"
    return f"{module}.{qualname}"


def _format(value: Any, depth: int, used: int, key: str) -> str:
    """Format ``value`` on one line if it fits in the width left, else over several lines."""
    flat = _format_flat(value, key)
    if len(flat) + used + depth * len(_INDENT) <= _WIDTH or not isinstance(value, (dict, list, tuple)) or not value:
        return flat
    inner = _INDENT * (depth + 1)
    items = []
    if isinstance(value, dict):
        as_call = all(_is_identifier(k) for k in value)
        for k, v in value.items():
            prefix = f"{k}=" if as_call else f"{k!r}: "
            items.append(f"{inner}{prefix}{_format(v, depth + 1, len(prefix), f'{key}.{k}')},")
        opening, closing = ("dict(", ")") if as_call else ("{", "}")
    else:
        for i, v in enumerate(value):
            items.append(f"{inner}{_format(v, depth + 1, 0, f'{key}.{i}')},")
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
    return opening + "\n" + "\n".join(items) + "\n" + _INDENT * depth + closing


def _format_flat(value: Any, key: str) -> str:
    if isinstance(value, dict):
        if all(_is_identifier(k) for k in value):
            return "dict(" + ", ".join(f"{k}={_format_flat(v, f'{key}.{k}')}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{k!r}: {_format_flat(v, f'{key}.{k}')}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_format_flat(v, f"{key}.{i}") for i, v in enumerate(value)) + "]"
    if isinstance(value, tuple):
        body = ", ".join(_format_flat(v, f"{key}.{i}") for i, v in enumerate(value))
        return f"({body},)" if len(value) == 1 else f"({body})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return repr(value)
    return repr(to_plain_data(value, key))
