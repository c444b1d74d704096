"""Pure-Python ("new style") configs: bases imported inside ``with read_base():``.

A config in this style inherits by importing other config files::

    from minirunner.config import read_base
    from torch.optim import SGD

    with read_base():
        from .._base_.schedule import *          # every name of that file
        from .model import model as base_model   # one name, renamed

    optimizer = dict(type=SGD, lr=0.1)           # a class as `type`: no registration needed

Inheritance follows Python's rules: a name imported from a base is a variable of this file,
which may change it (``optimizer.update(lr=0.01)`` updates recursively, ``.merge(...)``
merges as ``_base_`` does) or replace it. The imported base files are config files, not
Python modules: they are read by the config loader, so they need no ``__init__.py`` and a
relative import counts from the importing file's folder.

Unlike MMEngine, the other imports of the file (``from torch.optim import SGD``) run when
the config is loaded, so ``type`` holds the class itself rather than a lazy placeholder;
the registry builds a class directly, and a dump writes its import path.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import os
import types
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple

from minirunner.utils import ConfigError, did_you_mean

from .execution import execute, public_names, settings

_BIND = "__minirunner_bind_base__"


class Loaded(NamedTuple):
    """A config file read with its bases."""

    values: Any  # ConfigDict of the settings
    text: str  # the source of the file and its bases
    exports: dict[str, Any]  # the names another file can import from it


@contextmanager
def read_base() -> Iterator[None]:
    """Mark the imports of base config files in a pure-Python config.

    Only ``from <config file> import ...`` statements may stand inside it; import other
    things (classes, modules) outside it. It does nothing at run time: the config loader
    reads the block before the file runs.

    Example:
        >>> # in configs/resnet_sgd.py
        >>> from minirunner.config import read_base
        >>> with read_base():  # doctest: +SKIP
        ...     from ._base_.default_runtime import *
    """
    yield


def is_python_style(tree: ast.Module) -> bool:
    """True if the config imports bases with ``with read_base():`` (or relative imports)."""
    return any(_is_read_base(node) or (isinstance(node, ast.ImportFrom) and node.level > 0) for node in tree.body)


def evaluate_python_style(path: str, tree: ast.Module, load_base: Callable[[str], Loaded]) -> Loaded:
    """Run a pure-Python config whose bases ``load_base`` reads; return its settings and names."""
    bindings: list[dict[str, Any]] = []
    base_texts: list[str] = []
    body: list[ast.stmt] = []
    for node in tree.body:
        if _is_read_base(node):
            for statement in node.body:
                base_path = _base_file(path, statement)
                loaded = load_base(base_path)
                bindings.append(_names_to_bind(path, statement, base_path, loaded.exports))
                if loaded.text not in base_texts:  # a base imported twice is shown once
                    base_texts.append(loaded.text)
                call = ast.Expr(ast.Call(ast.Name(_BIND, ast.Load()), [ast.Constant(len(bindings) - 1)], []))
                body.append(ast.copy_location(call, statement))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise ConfigError(
                f"{path}, line {node.lineno}: a relative import of a config file "
                f"('from {'.' * node.level}{node.module or ''} import ...') must stand inside "
                "`with read_base():`; import classes and modules with absolute imports"
            )
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            raise ConfigError(
                f"{path}, line {node.lineno}: this config imports its bases with "
                "`with read_base():`, so it cannot also set _base_; import those files inside "
                "read_base() too",
                key="_base_",
            )
        else:
            body.append(node)
    tree.body = body
    ast.fix_missing_locations(tree)

    namespace: dict[str, Any] = {"__file__": path, "__name__": "__minirunner_config__"}

    def bind(index: int) -> None:
        # A copy per import, so changing an imported dict never changes the base's values.
        for name, value in bindings[index].items():
            namespace[name] = value if isinstance(value, types.ModuleType) else copy.deepcopy(value)

    namespace[_BIND] = bind
    execute(path, tree, namespace)
    names = public_names(namespace)
    return Loaded(settings(names), "\n".join(base_texts), names)


def _is_read_base(node: ast.stmt) -> bool:
    if not isinstance(node, ast.With) or len(node.items) != 1:
        return False
    expr = node.items[0].context_expr
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name == "read_base"


def _base_file(path: str, statement: ast.stmt) -> str:
    """The file that ``from .x.y import ...`` (inside read_base) names, relative to ``path``."""
    if not isinstance(statement, ast.ImportFrom) or statement.module is None:
        raise ConfigError(
            f"{path}, line {statement.lineno}: only `from <config file> import ...` statements "
            "may stand inside `with read_base():` (for example `from ._base_.schedule import *`); "
            "move other code below the block"
        )
    module = statement.module
    if statement.level:
        folder = os.path.dirname(path)
        parts = [".."] * (statement.level - 1) + module.split(".")
        candidate = os.path.normpath(os.path.join(folder, *parts)) + ".py"
        where = f"relative to {folder}"
    else:
        package, _, rest = module.partition(".")
        spec = importlib.util.find_spec(package) if rest else None
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            raise ConfigError(
                f"{path}, line {statement.lineno}: cannot find the config '{module}' imported in "
                "read_base(); name a config file inside an installed package "
                "(from package.configs.file import *) or use a relative import (from .file import *)"
            )
        candidate = os.path.join(locations[0], *rest.split(".")) + ".py"
        where = f"in the package {package} at {locations[0]}"
    if not os.path.isfile(candidate):
        raise ConfigError(
            f"{path}, line {statement.lineno}: the base config '{'.' * statement.level}{module}' "
            f"does not exist (looked for {candidate}, {where}); each dot level is one folder up "
            "and the last part names a .py file"
        )
    return candidate


def _names_to_bind(path: str, statement: ast.ImportFrom, base_path: str, exports: dict[str, Any]) -> dict[str, Any]:
    names: dict[str, Any] = {}
    for alias in statement.names:
        if alias.name == "*":
            names.update(exports)
        elif alias.name in exports:
            names[alias.asname or alias.name] = exports[alias.name]
        else:
            raise ConfigError(
                f"{path}, line {statement.lineno}: the base config {base_path} defines no "
                f"'{alias.name}'.{did_you_mean(alias.name, exports)} It defines: "
                f"{', '.join(sorted(exports)) or 'nothing'}"
            )
    return names
