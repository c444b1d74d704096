"""`Registry`: maps names in configs to classes and functions, and builds them."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from minirunner.utils import ConfigError, did_you_mean, quoted_list


class Registry:
    """A named table of classes (or functions) that configs refer to by name.

    Args:
        name: what the registry holds, used in error messages (``'optimizer'``).
        build_func: builds an object from a config; defaults to :func:`build_from_cfg`
            (or the parent's build function).
        parent: a registry to fall back to when a name is not found here. A child
            registry lets a downstream project add names without touching the root.
        scope: the namespace of this registry, used in ``'scope.Name'`` look-ups.
            Defaults to the top-level package of the module that creates the registry.
        locations: modules to import the first time a name is looked up, so that
            their ``register_module`` calls have run.

    Example:
        >>> MODELS = Registry('model')
        >>> @MODELS.register_module()
        ... class Net: ...
        >>> MODELS.build(dict(type='Net'))  # doctest: +ELLIPSIS
        <...Net object at ...>
    """

    def __init__(
        self,
        name: str,
        build_func: Callable | None = None,
        parent: "Registry | None" = None,
        scope: str | None = None,
        locations: list[str] | None = None,
    ) -> None:
        self.name = name
        self._module_dict: dict[str, Any] = {}
        self._children: dict[str, Registry] = {}
        self._locations = list(locations or [])
        self._imported_locations = False
        if scope is None:
            caller = sys._getframe(1).f_globals.get("__name__", "__main__")
            scope = caller.split(".")[0]
        self._scope = scope
        self.parent = parent
        if parent is not None:
            if scope in parent._children:
                raise KeyError(
                    f"registry '{parent.name}' already has a child with scope '{scope}'; "
                    "pass a different scope= to the child registry"
                )
            parent._children[scope] = self
        if build_func is None:
            build_func = parent.build_func if parent is not None else build_from_cfg
        self.build_func = build_func

    # ------------------------------------------------------------------ introspection
    @property
    def scope(self) -> str:
        """The namespace of this registry (``'minirunner'`` for the root registries)."""
        return self._scope

    @property
    def module_dict(self) -> dict[str, Any]:
        """The names registered here (not in parents), mapped to their objects."""
        self._import_locations()
        return self._module_dict

    @property
    def children(self) -> dict[str, "Registry"]:
        """Child registries keyed by scope."""
        return self._children

    @property
    def root(self) -> "Registry":
        """The registry at the top of the parent chain."""
        registry = self
        while registry.parent is not None:
            registry = registry.parent
        return registry

    def __len__(self) -> int:
        return len(self.module_dict)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.module_dict))
        return f"Registry(name={self.name!r}, scope={self.scope!r}, items=[{names}])"

    def known_names(self) -> list[str]:
        """Every name a look-up here can resolve without a scope prefix, parents included."""
        names: set[str] = set()
        registry: Registry | None = self
        while registry is not None:
            names.update(registry.module_dict)
            registry = registry.parent
        return sorted(names)

    # ------------------------------------------------------------------ registration
    def register_module(
        self,
        name: str | list[str] | None = None,
        force: bool = False,
        module: Any = None,
    ) -> Any:
        """Register a class or function, as a decorator or as a plain call.

        Args:
            name: the name (or names) to register under; the object's ``__name__`` if None.
            force: replace an object already registered under the same name.
            module: the object to register; when None, a decorator is returned.

        Example:
            >>> HOOKS = Registry('hook')
            >>> @HOOKS.register_module(name=['Short', 'LongName'])
            ... class MyHook: ...
            >>> HOOKS.register_module(module=print, name='print_fn')  # doctest: +ELLIPSIS
            <built-in function print>
        """
        if not isinstance(force, bool):
            raise TypeError(f"force must be a bool, got {type(force).__name__}")
        if name is not None and not isinstance(name, str) and not (
            isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name)
        ):
            raise TypeError(f"name must be None, a str or a list of str, got {name!r}")

        if module is not None:
            self._register(module, name, force)
            return module

        def decorator(obj: Any) -> Any:
            self._register(obj, name, force)
            return obj

        return decorator

    def _register(self, obj: Any, name: str | list[str] | None, force: bool) -> None:
        if not callable(obj):
            raise TypeError(f"only classes and functions can be registered, got {obj!r}")
        names = [obj.__name__] if name is None else [name] if isinstance(name, str) else list(name)
        for key in names:
            taken = self._module_dict.get(key)
            if taken is not None and taken is not obj and not force:
                raise KeyError(
                    f"'{key}' is already registered in the '{self.name}' registry "
                    f"(as {_qualified_name(taken)}); pick another name or pass force=True "
                    "to replace it"
                )
            self._module_dict[key] = obj

    # ------------------------------------------------------------------ look-up
    def get(self, key: str) -> Any:
        """Return the object registered as ``key``, or None if there is none.

        ``key`` may be a plain name (searched here, then in the parents), a scoped name
        ``'scope.Name'`` (searched in the registry of that scope), or a dotted import path
        such as ``'torch.optim.SGD'``.
        """
        if not isinstance(key, str):
            raise TypeError(f"registry keys are strings, got {key!r}")
        registry: Registry | None = self
        while registry is not None:
            found = registry.module_dict.get(key)
            if found is not None:
                return found
            registry = registry.parent
        if "." not in key:
            return None
        scope, short = key.split(".", 1)
        scoped = self._registry_of_scope(scope)
        if scoped is not None:
            found = scoped.get(short)
            if found is not None:
                return found
        # A full import path may start with a scope's name ('minirunner.optim.OptimWrapper').
        return _import_object(key)

    def _registry_of_scope(self, scope: str) -> "Registry | None":
        # Breadth-first over the whole tree, so a sibling project's names resolve too.
        pending = [self.root]
        while pending:
            registry = pending.pop(0)
            if registry.scope == scope:
                return registry
            pending.extend(registry.children.values())
        return None

    def _import_locations(self) -> None:
        if self._imported_locations:
            return
        self._imported_locations = True
        for location in self._locations:
            try:
                importlib.import_module(location)
            except ModuleNotFoundError as error:
                # A location that does not exist (yet) is not an error; anything that
                # fails inside an existing module is, and keeps its traceback.
                if error.name is not None and (error.name == location or location.startswith(error.name + ".")):
                    continue
                self._imported_locations = False  # so the next look-up raises again
                raise
            except BaseException:
                self._imported_locations = False
                raise

    # ------------------------------------------------------------------ build
    def build(self, cfg: Mapping, *args: Any, **kwargs: Any) -> Any:
        """Build an object from ``cfg`` with this registry's build function.

        The registry's ``locations`` are imported first: a package imported there may
        install its own build function (the schedulers do, for ``convert_to_iter_based``).
        """
        self._import_locations()
        return self.build_func(cfg, *args, **kwargs, registry=self)


def _qualified_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _import_object(path: str) -> Any:
    """Import ``'package.module.Name'`` (attributes may be nested); None if impossible."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


@contextmanager
def config_key(key: str) -> Iterator[None]:
    """Add ``key`` to the path of any :class:`ConfigError` raised inside the block.

    Example:
        >>> with config_key('optim_wrapper'):  # doctest: +SKIP
        ...     build_optim_wrapper(model, cfg.optim_wrapper)
        ConfigError: optim_wrapper.optimizer.type: 'SDG' is not registered ...
    """
    try:
        yield
    except ConfigError as error:
        raise error.under(key)


class FullKeyConfigError(ConfigError):
    """A :class:`ConfigError` whose key is already the full path from the top of the config.

    For code that runs inside one key's :func:`config_key` block but finds a problem with
    another key: a training loop is built under ``config_key('train_cfg')``, yet an empty
    dataloader is a problem of ``train_dataloader``, not of ``train_cfg.train_dataloader``.
    The enclosing blocks leave the key of this error as it is.

    Example:
        >>> with config_key('train_cfg'):  # doctest: +SKIP
        ...     raise FullKeyConfigError('the dataset is empty', key='train_dataloader')
        FullKeyConfigError: train_dataloader: the dataset is empty
    """

    def under(self, parent: str) -> "FullKeyConfigError":
        """Return the error unchanged: its key is complete."""
        return self


def _check_arguments(obj: Any, name: str, args: dict[str, Any]) -> None:
    """Raise a ConfigError if ``args`` cannot be passed to ``obj`` as keyword arguments."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return  # Some builtins have no signature; let the call itself decide.
    params = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = []
    else:
        accepted = {
            p.name
            for p in params.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        unknown = [key for key in args if key not in accepted]
    if unknown:
        accepted_names = [
            p.name for p in params.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
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
        if p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.name not in args
    ]
    if missing:
        raise ConfigError(
            f"{name} is missing required argument(s) {quoted_list(missing)}; "
            "add them to the config."
        )


def build_from_cfg(
    cfg: Mapping,
    registry: Registry,
    default_args: Mapping | None = None,
) -> Any:
    """Build the object that ``cfg['type']`` names, with the other keys as arguments.

    ``type`` may be a registered name, a ``'scope.Name'``, a dotted import path, or a
    class or function. Keys in ``cfg`` win over ``default_args``. Neither mapping is
    changed. Anything that goes wrong while building is raised as a
    :class:`ConfigError` that says which key and how to fix it.

    Example:
        >>> from minirunner.registry import OPTIMIZERS
        >>> import torch
        >>> params = [torch.nn.Parameter(torch.zeros(1))]
        >>> OPTIMIZERS.build(dict(type='SGD', lr=0.1), default_args=dict(params=params))
        ... # doctest: +ELLIPSIS
        SGD (...
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"expected a dict config for the '{registry.name}' registry, got "
            f"{type(cfg).__name__} {cfg!r}; write it as dict(type='...', ...)"
        )
    if default_args is not None and not isinstance(default_args, Mapping):
        raise TypeError(f"default_args must be a dict or None, got {type(default_args).__name__}")
    args = dict(cfg)
    for key, value in (default_args or {}).items():
        args.setdefault(key, value)
    if "type" not in args:
        raise ConfigError(
            f"the config for the '{registry.name}' registry has no 'type' key (keys: "
            f"{quoted_list(cfg.keys()) or 'none'}); add type='<registered name>'"
        )
    obj_type = args.pop("type")
    if isinstance(obj_type, str):
        obj = registry.get(obj_type)
        if obj is None:
            raise ConfigError(
                f"'{obj_type}' is not registered in the '{registry.name}' registry (scope "
                f"'{registry.scope}').{did_you_mean(obj_type, registry.known_names())} "
                f"Registered names: {quoted_list(registry.known_names())}. Register the class "
                "with @<REGISTRY>.register_module(), import its module through "
                "custom_imports, or give a full import path such as 'package.module.Class'.",
                key="type",
            )
        name = obj_type
    elif callable(obj_type):
        obj = obj_type
        name = getattr(obj_type, "__name__", repr(obj_type))
    else:
        raise ConfigError(
            f"'type' must be a registered name or a class/function, got {obj_type!r}",
            key="type",
        )
    _check_arguments(obj, name, args)
    try:
        return obj(**args)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"building {name} failed: {type(error).__name__}: {error}") from error
