"""Running the code of a ``.py`` config and collecting its settings."""

from __future__ import annotations

import ast
import traceback
import types
from typing import Any

from minirunner.utils import ConfigError

from .config_dict import ConfigDict


def execute(path: str, tree: ast.Module, namespace: dict[str, Any]) -> None:
    """Run the parsed config ``tree`` in ``namespace``; an error names the file and line."""
    code = compile(tree, path, "exec")
    try:
        exec(code, namespace)
    except Exception as error:
        line = _line_in_file(error, path)
        where = f"{path}, line {line}" if line else path
        raise ConfigError(f"{where}: {type(error).__name__}: {error}") from error


def public_names(namespace: dict[str, Any]) -> dict[str, Any]:
    """Every name the config defined or imported, without the interpreter's ``__dunder__`` names."""
    return {name: ConfigDict._hook(value) for name, value in namespace.items() if not name.startswith("__")}


def settings(names: dict[str, Any]) -> ConfigDict:
    """The config's settings among ``names``: imports and helper functions or classes are tools."""
    return ConfigDict(
        {
            name: value
            for name, value in names.items()
            if not isinstance(value, (types.ModuleType, types.FunctionType, type))
        }
    )


def _line_in_file(error: BaseException, path: str) -> int | None:
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename == path:
            return frame.lineno
    return None
