"""Registry statistics: what is registered where, for a tree or for all root registries."""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any

from . import root
from .registry import Registry

_logger = logging.getLogger("minirunner.registry")


def traverse_registry_tree(registry: Registry, verbose: bool = True) -> list[dict[str, Any]]:
    """Describe every registry in the tree of ``registry`` (from its root, depth first).

    Each entry holds ``num_modules``, ``scope``, and for each folder of the registered
    objects' modules (``'minirunner/optim'`` for ``minirunner.optim.sgd``) the names
    registered from it.

    Example:
        >>> from minirunner.registry import OPTIMIZERS
        >>> info = traverse_registry_tree(OPTIMIZERS, verbose=False)
        >>> info[0]['scope'], info[0]['num_modules'] >= 1
        ('minirunner', True)
    """
    found: list[dict[str, Any]] = []
    pending = [registry.root]
    while pending:
        node = pending.pop()
        entry: dict[str, Any] = {"num_modules": len(node.module_dict), "scope": node.scope}
        for name, obj in node.module_dict.items():
            module = getattr(obj, "__module__", None) or ""
            folder = "/".join(module.split(".")[:-1])
            entry.setdefault(folder, []).append(name)
        if verbose:
            _logger.info("found %d modules in %s's '%s' registry", entry["num_modules"], node.scope, node.name)
        found.append(entry)
        # Reversed, so children come out in the order they were added.
        pending.extend(reversed(list(node.children.values())))
    return found


def count_registered_modules(save_path: str | None = None, verbose: bool = True) -> dict[str, Any]:
    """Describe every root registry's tree (see :func:`traverse_registry_tree`).

    The registries' ``locations`` are imported first, so the built-in classes count.
    With ``save_path``, the result is also written to
    ``<save_path>/modules_statistic_results.json``.

    Returns:
        ``{'scan_date': ..., 'registries': {'MODELS': [...], ...}}``
    """
    registries: dict[str, Any] = {}
    for attr in sorted(vars(root)):
        registry = getattr(root, attr)
        if not attr.startswith("_") and isinstance(registry, Registry):
            registries[attr] = traverse_registry_tree(registry, verbose)
    result = {"scan_date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "registries": registries}
    if save_path is not None:
        os.makedirs(save_path, exist_ok=True)
        path = os.path.join(save_path, "modules_statistic_results.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        if verbose:
            _logger.info("registry statistics written to %s", path)
    return result
