"""Build functions: turn a config into an object with a registry.

:func:`build_from_cfg` is every registry's default; :func:`build_runner_from_cfg` is the
RUNNERS registry's (it calls ``from_cfg`` of the runner class) and
:func:`build_model_from_cfg` the MODELS registry's (a list of configs builds a
``Sequential``). All three accept a dict, a ``ConfigDict`` or a whole ``Config``, honour a
``_scope_`` key (build under that default scope) and look names up in the registry of the
current default scope (see :meth:`Registry.switch_scope_and_registry`).
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Mapping
from typing import Any

from minirunner.utils import ConfigError, ManagerMixin, did_you_mean, quoted_list

from .default_scope import DefaultScope
from .errors import RegistryKeyError, RegistryTypeError
from .registry import Registry


def _is_config(cfg: Any) -> bool:
    """A dict, a ConfigDict, or a Config (which is not a Mapping but reads like one)."""
    if isinstance(cfg, Mapping):
        return True
    return hasattr(type(cfg), "__getitem__") and callable(getattr(cfg, "keys", None))


def _check_cfg(cfg: Any, registry: Any, what: str = "a dict config") -> None:
    if not isinstance(registry, Registry):
        raise TypeError(f"registry must be a minirunner Registry, got {type(registry).__name__}")
    if not _is_config(cfg):
        raise RegistryTypeError(
            f"expected {what} for the '{registry.name}' registry, got "
            f"{type(cfg).__name__} {cfg!r}; write it as dict(type='...', ...)"
        )


def _not_registered(name: str, registry: Registry, key: str) -> RegistryKeyError:
    """The error for a name no registry in reach holds: where it looked, close names, and
    (when the name is registered under another scope of the tree) how to reach it."""
    known = registry.known_names()
    hint = did_you_mean(name, known)
    elsewhere = _scopes_holding(name, registry)
    if elsewhere:
        scope = elsewhere[0]
        hint += (
            f" '{name}' is registered in scope '{scope}': write '{scope}.{name}' or set "
            f"default_scope='{scope}'."
        )
    current = DefaultScope.get_current_instance()
    scope_note = f"scope '{registry.scope}'"
    if current is not None and current.scope_name != registry.scope:
        scope_note += f"; the default scope '{current.scope_name}' has no registry in this tree"
    return RegistryKeyError(
        f"'{name}' is not registered in the '{registry.name}' registry ({scope_note}).{hint} "
        f"Registered names: {quoted_list(known)}. Register the class "
        "with @<REGISTRY>.register_module(), import its module through "
        "custom_imports, or give a full import path such as 'package.module.Class'.",
        key=key,
    )


def _scopes_holding(name: str, registry: Registry) -> list[str]:
    found = []
    pending = [registry.root]
    while pending:
        node = pending.pop(0)
        if node is not registry and name in node.module_dict:
            found.append(node.scope)
        pending.extend(node.children.values())
    return found


def _check_arguments(obj: Any, name: str, args: dict[str, Any]) -> None:
    """Raise a ConfigError if ``args`` cannot be passed to ``obj`` as keyword arguments."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return  # Some builtins have no signature; let the call itself decide.
    params = signature.parameters
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted_names = [p.name for p in params.values() if p.kind in keyword_kinds]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = []
    else:
        unknown = [key for key in args if key not in accepted_names]
    if unknown:
        hints = "".join(did_you_mean(key, accepted_names) for key in unknown)
        raise ConfigError(
            f"{name} got unexpected argument(s) {quoted_list(unknown)}; it accepts "
            f"{quoted_list(accepted_names) or 'no keyword arguments'}.{hints} "
            "Remove or rename the argument.",
            key=unknown[0] if len(unknown) == 1 else None,
        )
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty and p.kind in keyword_kinds and p.name not in args
    ]
    if missing:
        raise ConfigError(
            f"{name} is missing required argument(s) {quoted_list(missing)}; "
            "add them to the config."
        )


def build_from_cfg(cfg: Any, registry: Registry, default_args: Any = None) -> Any:
    """Build the object that ``cfg['type']`` names, with the other keys as arguments.

    ``type`` may be a registered name, a ``'scope.Name'``, a dotted import path, or a
    class or function. Keys in ``cfg`` win over ``default_args``; neither is changed. A
    ``_scope_`` key builds under that default scope. A class that uses
    :class:`~minirunner.utils.ManagerMixin` is built with ``get_instance(**args)``, so
    building it twice under one ``name`` gives the same instance.

    Anything that goes wrong is raised as a :class:`ConfigError` that says which key and
    how to fix it; an unknown or missing ``type`` is also a ``KeyError``, a config that is
    not a dict (or a ``type`` that is neither a name nor a class) also a ``TypeError``.

    Example:
        >>> from minirunner.registry import OPTIMIZERS
        >>> import torch
        >>> params = [torch.nn.Parameter(torch.zeros(1))]
        >>> OPTIMIZERS.build(dict(type='SGD', lr=0.1), default_args=dict(params=params))
        ... # doctest: +ELLIPSIS
        SGD (...
    """
    _check_cfg(cfg, registry)
    if default_args is not None and not _is_config(default_args):
        raise TypeError(f"default_args must be a dict or None, got {type(default_args).__name__}")
    args = dict(cfg)
    for key, value in dict(default_args or {}).items():
        args.setdefault(key, value)
    if "type" not in args:
        raise RegistryKeyError(
            f"the config for the '{registry.name}' registry has no 'type' key (keys: "
            f"{quoted_list(list(cfg.keys())) or 'none'}); add type='<registered name>'"
        )
    scope = args.pop("_scope_", None)
    with registry.switch_scope_and_registry(scope) as scoped:
        obj_type = args.pop("type")
        if isinstance(obj_type, str):
            obj = scoped.get(obj_type)
            if obj is None:
                raise _not_registered(obj_type, scoped, key="type")
            name = obj_type
        elif callable(obj_type):
            obj = obj_type
            name = getattr(obj_type, "__name__", repr(obj_type))
        else:
            raise RegistryTypeError(
                f"'type' must be a registered name or a class/function, got {obj_type!r}",
                key="type",
            )
        _check_arguments(obj, name, args)
        managed = inspect.isclass(obj) and issubclass(obj, ManagerMixin)
        try:
            # A managed class (a message hub, a visualizer) is looked up by name, so a
            # config and the code that reads `get_current_instance()` share one object.
            return obj.get_instance(**args) if managed else obj(**args)
        except ConfigError:
            raise
        except Exception as error:
            raise _build_failure(name, error) from error


def _build_failure(name: str, error: Exception) -> ConfigError:
    """A ConfigError (naming the key as it travels up) that is also of ``error``'s class,
    so code that catches what the constructor raised, as it would with MMEngine (which
    re-raises the same class), still catches it."""
    message = f"building {name} failed: {type(error).__name__}: {error}"
    both = _config_error_also(type(error))
    return both(message) if both is not None else ConfigError(message)


@functools.lru_cache(maxsize=None)
def _config_error_also(error_class: type) -> type | None:
    if issubclass(ConfigError, error_class):
        return None  # a ValueError or Exception: a ConfigError already is one
    try:
        return type(
            f"Config{error_class.__name__}",
            (ConfigError, error_class),
            # Our message, not error_class's str() (KeyError would quote it).
            {"__str__": ConfigError.__str__, "__module__": __name__},
        )
    except TypeError:  # a class whose instances lay out differently (OSError and kin)
        return None


def build_runner_from_cfg(cfg: Any, registry: Registry) -> Any:
    """Build a runner: ``from_cfg(cfg)`` of the class that ``cfg['runner_type']`` names
    (``'Runner'`` when the key is absent), looked up in the registry of ``cfg['_scope_']``,
    else of the config's ``default_scope``, else of the current default scope.

    This is the RUNNERS registry's build function, so ``RUNNERS.build(cfg)`` with a whole
    :class:`~minirunner.config.Config` equals ``Runner.from_cfg(cfg)``; a ``Config`` is
    passed on as it is, keeping its file name and text.

    Example:
        >>> from minirunner.config import Config
        >>> from minirunner.registry import RUNNERS
        >>> runner = RUNNERS.build(Config.fromfile('configs/digits_mlp.py'))  # doctest: +SKIP
    """
    _check_cfg(cfg, registry, what="a dict or Config")
    args = cfg
    scope = None
    if "_scope_" in cfg:
        scope = cfg["_scope_"]
        args = copy.copy(cfg)  # Config's own copy keeps filename and text
        del args["_scope_"]
    elif isinstance(cfg.get("default_scope"), str):
        # The scope the run will use: a project's runner is registered in its own RUNNERS.
        scope = cfg["default_scope"]
    with registry.switch_scope_and_registry(scope) as scoped:
        runner_type = cfg["runner_type"] if "runner_type" in cfg else None
        if runner_type is None:
            runner_type = "Runner"
        if isinstance(runner_type, str):
            runner_cls = scoped.get(runner_type)
            if runner_cls is None:
                raise _not_registered(runner_type, scoped, key="runner_type")
        elif inspect.isclass(runner_type):
            runner_cls = runner_type
        else:
            raise RegistryTypeError(
                f"'runner_type' must be a registered runner name or a Runner class, got {runner_type!r}",
                key="runner_type",
            )
        from_cfg = getattr(runner_cls, "from_cfg", None)
        if from_cfg is None:
            raise ConfigError(
                f"{runner_cls.__name__} has no from_cfg classmethod; runner_type must name a "
                "Runner subclass",
                key="runner_type",
            )
        return from_cfg(args)


def build_model_from_cfg(cfg: Any, registry: Registry, default_args: Any = None) -> Any:
    """Build a model; a list of configs builds each and chains them in a ``Sequential``.

    Example:
        >>> import torch
        >>> LAYERS = Registry('layer', build_func=build_model_from_cfg, scope='doc_layers')
        >>> LAYERS.build([dict(type='torch.nn.Linear', in_features=2, out_features=3),
        ...               dict(type='torch.nn.ReLU')])  # doctest: +NORMALIZE_WHITESPACE
        Sequential(
          (0): Linear(in_features=2, out_features=3, bias=True)
          (1): ReLU()
        )
    """
    if isinstance(cfg, list):
        from torch import nn

        modules = []
        for index, item in enumerate(cfg):
            try:
                modules.append(build_from_cfg(item, registry, default_args))
            except ConfigError as error:
                # 'model.1.type': the path --cfg-options uses for list items.
                raise error.under(str(index))
        return nn.Sequential(*modules)
    return build_from_cfg(cfg, registry, default_args)
