"""minirunner: a compact PyTorch training framework with MMEngine-style configs.

The top-level package imports nothing heavy; import what you need from its subpackages::

    from minirunner.config import Config
    from minirunner.registry import MODELS

As in MMEngine, the config, registry, logging and utility names are also reachable from the
top level (``from minirunner import Config, MODELS, MMLogger``); each is imported on first use.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__version__ = "0.1.0"

# The CPU torch wheel comes without NumPy and warns about it when torch is imported; nothing in
# minirunner needs NumPy, so the warning is only noise on every first run. (Set before any
# subpackage imports torch; a torch imported earlier by the user has warned already.)
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

# What `mmengine/__init__.py` re-exports (its config, logging, registry and utils packages),
# mapped to the subpackage that holds each name here.
_LAZY_PACKAGES = ("minirunner.config", "minirunner.registry", "minirunner.logging", "minirunner.utils")


def __getattr__(name: str) -> Any:
    for package_name in _LAZY_PACKAGES:
        package = importlib.import_module(package_name)
        if name in getattr(package, "__all__", ()):
            value = getattr(package, name)
            globals()[name] = value  # the next lookup is a plain attribute
            return value
    raise AttributeError(f"module 'minirunner' has no attribute {name!r}")
