"""Checks of the config a Runner is built from, made before anything is built: the runner
class ``runner_type`` names, the top-level keys (one that looks like a misspelt Runner
argument is an error) and the checkpoint paths of ``load_from`` and ``resume``."""

from __future__ import annotations

import difflib
import inspect
import os
import re
from typing import Any

from minirunner.config import Config
from minirunner.registry import RUNNERS
from minirunner.utils import ConfigError, did_you_mean

# Config keys that Runner.from_cfg reads besides the Runner's own arguments.
EXTRA_CFG_KEYS = ("runner_type", "model_wrapper_cfg", "find_unused_parameters", "sync_bn", "compile", "custom_imports")


def unused_key_notes(cfg: Config, runner_cls: type, base: type) -> list[str]:
    """One line for each top-level key that no Runner reads, that looks like a misspelt key it
    does read (``optim_wraper``), and that the config's own text does not use elsewhere (a
    helper variable such as ``lr = 0.1`` is used by the keys that read it)."""
    accepted = accepted_arguments(runner_cls, base) + list(EXTRA_CFG_KEYS)
    text = cfg.text if isinstance(cfg, Config) else ""
    notes = []
    for key in cfg:
        if key not in accepted and not key.startswith("_") and len(re.findall(rf"\b{re.escape(key)}\b", text)) < 2:
            # A strict cutoff: configs are full of helper names (data_root, tta_model) that
            # a loose match would flag; real typos of these long keys score above 0.85.
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.85)
            if close:
                notes.append(f"config key '{key}' is not used by the Runner. Did you mean '{close[0]}'?")
    return notes


def checked_checkpoint_path(path: Any, key: str) -> str | None:
    """``path`` (``load_from`` or ``resume``) if it names an existing file; else a ConfigError."""
    if path is None or path == "":
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"must be a checkpoint file path, got {path!r}", key=key)
    path = os.fspath(path)
    if "://" in path:
        raise ConfigError(
            f"{path} is a URL; minirunner reads local files only. Download it first (e.g. "
            f"`wget {path}`) and set {key} to the downloaded file",
            key=key,
        )
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, ".metadata")):
        return path  # a sharded checkpoint (a directory written with DCP)
    if os.path.isdir(path):
        hint = " (resume='auto' takes the newest checkpoint of the work dir)" if key == "resume" else ""
        raise ConfigError(f"{path} is a directory; name a checkpoint file{hint}", key=key)
    if not os.path.isfile(path):
        raise ConfigError(f"checkpoint not found: {path}", key=key)
    return path


def accepted_arguments(runner_cls: type, base: type) -> list[str]:
    """The config keys ``runner_cls.__init__`` takes: its named arguments, plus every argument
    of ``base`` (the Runner) when it forwards ``**kwargs`` (the usual shape of a subclass)."""
    named = [p for p in inspect.signature(base.__init__).parameters if p not in ("self", "cfg", "unknown")]
    if runner_cls is base:
        return named
    params = inspect.signature(runner_cls.__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    accepted = [name for name, p in params.items() if name not in ("self", "cfg") and p.kind not in variadic]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted += [name for name in named if name not in accepted]
    return accepted


def runner_class(name: Any, scope: str | None = None) -> type:
    """The runner class ``runner_type`` names: a class as it is, or a registered name."""
    if isinstance(name, type):
        return name
    # The config's scope first (else the current default scope): a downstream project
    # registers its runner in its own RUNNERS.
    with RUNNERS.switch_scope_and_registry(scope) as registry:
        found = registry.get(name)
        if found is None:
            raise ConfigError(
                f"'{name}' is not a registered runner.{did_you_mean(str(name), registry.known_names())} "
                "Register your Runner subclass with @RUNNERS.register_module()"
            )
    return found
