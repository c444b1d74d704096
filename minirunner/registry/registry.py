"""`Registry`: maps names in configs to classes and functions, and builds them."""

from __future__ import annotations

import importlib
import logging
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .default_scope import DefaultScope

_logger = logging.getLogger("minirunner.registry")


class Registry:
    """A named table of classes (or functions) that configs refer to by name.

    Args:
        name: what the registry holds, used in error messages (``'optimizer'``).
        build_func: builds an object from a config; defaults to :func:`build_from_cfg`
            (or the parent's build function).
        parent: a registry to fall back to when a name is not found here. A child
            registry lets a downstream project add names without touching the root.
        scope: the namespace of this registry, used in ``'scope.Name'`` look-ups and by
            the default scope (:class:`DefaultScope`). Defaults to the top-level package
            of the module that creates the registry (see :meth:`infer_scope`).
        locations: modules to import the first time a name is looked up, so that
            their ``register_module`` calls have run.

    While a default scope is current, :meth:`build` looks names up in the registry of
    that scope in this registry's tree (then in its parents), as the reference does; see
    :meth:`switch_scope_and_registry`. :meth:`get` does not depend on the default scope.

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
            scope = self.infer_scope()
        elif not isinstance(scope, str):
            raise TypeError(f"scope must be a str or None, got {scope!r}")
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
            # Imported here: the build functions module imports this one.
            from .build_functions import build_from_cfg

            build_func = parent.build_func if parent is not None else build_from_cfg
        self.build_func = build_func

    @staticmethod
    def infer_scope() -> str:
        """The top-level package of the module that called ``Registry(...)``.

        ``Registry('model')`` written in ``myproj/models/registry.py`` gets the scope
        ``'myproj'``; in a script run directly it is ``'__main__'``.
        """
        # Frame 0 is this function, 1 is Registry.__init__, 2 is whoever created the registry.
        caller = sys._getframe(2).f_globals.get("__name__", "__main__")
        return caller.split(".")[0]

    @staticmethod
    def split_scope_key(key: str) -> tuple[str | None, str]:
        """Split ``'scope.Name'`` at the first dot into ``('scope', 'Name')``.

        Example:
            >>> Registry.split_scope_key('mmdet.ResNet')
            ('mmdet', 'ResNet')
            >>> Registry.split_scope_key('ResNet')
            (None, 'ResNet')
        """
        scope, dot, rest = key.partition(".")
        return (scope, rest) if dot else (None, key)

    # ------------------------------------------------------------------ introspection
    @property
    def scope(self) -> str:
        """The namespace of this registry (``'minirunner'`` for the root registries)."""
        return self._scope

    @property
    def module_dict(self) -> dict[str, Any]:
        """The names registered here (not in parents), mapped to their objects."""
        self.import_from_location()
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
        scope, short = self.split_scope_key(key)
        if scope is None:
            return None
        scoped = self._registry_of_scope(scope)
        if scoped is None and _import_scope_registry(scope):
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

    @contextmanager
    def switch_scope_and_registry(self, scope: str | None) -> Iterator["Registry"]:
        """Make ``scope`` the default scope inside the block and yield its registry.

        With ``scope=None`` the default scope stays as it is. The registry yielded is the
        one of the (new) default scope in this registry's tree; when there is no default
        scope, or the tree has no registry of that scope, it is this registry itself.
        Builds use this to look names up, so under the default scope ``'myproj'``,
        ``MODELS.build(dict(type='MyNet'))`` finds the class registered in ``myproj``'s
        child of MODELS.

        Example:
            >>> MODELS = Registry('model', scope='base_demo')
            >>> MY_MODELS = Registry('model', parent=MODELS, scope='my_demo')
            >>> with MODELS.switch_scope_and_registry('my_demo') as registry:
            ...     registry is MY_MODELS, DefaultScope.get_current_instance().scope_name
            (True, 'my_demo')
        """
        with DefaultScope.overwrite_default_scope(scope):
            yield self._registry_of_default_scope()

    def _registry_of_default_scope(self) -> "Registry":
        current = DefaultScope.get_current_instance()
        if current is None or current.scope_name == self._scope:
            return self
        scope_name = current.scope_name
        registry = self._registry_of_scope(scope_name)
        # A downstream package's child registries appear when its registry module is
        # imported; try that once, only when the scope is missing from the tree.
        if registry is None and _import_scope_registry(scope_name):
            registry = self._registry_of_scope(scope_name)
        if registry is None:
            # As the reference: fall back to this registry. An unknown type then gets an
            # error that names the default scope (see build_from_cfg).
            _logger.debug(
                "no registry of the default scope '%s' in the tree of the '%s' registry; "
                "building from the '%s' registry itself", scope_name, self.name, self._scope,
            )
            return self
        return registry

    def import_from_location(self) -> None:
        """Import this registry's ``locations`` (once), so their classes are registered.

        A location that does not exist is skipped; an error raised inside an existing
        module propagates, and the next look-up tries again.
        """
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
    def build(self, cfg: Any, *args: Any, **kwargs: Any) -> Any:
        """Build an object from ``cfg`` with this registry's build function.

        ``cfg`` may be a dict, a :class:`~minirunner.config.ConfigDict` or a whole
        :class:`~minirunner.config.Config` (``RUNNERS.build(cfg)``). The registry's
        ``locations`` are imported first: a package imported there may install its own
        build function (the schedulers do, for ``convert_to_iter_based``).
        """
        self.import_from_location()
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


# Scopes without a `<scope>.registry` module: not searched for again on every build.
_scopes_without_registry_module: set[str] = set()


def _import_scope_registry(scope: str) -> bool:
    """Import ``<scope>.registry`` (where a downstream package makes its child registries);
    whether it could be imported. A missing module is not an error; an error inside an
    existing one propagates."""
    if not scope.isidentifier() or scope in _scopes_without_registry_module:
        return False
    module = f"{scope}.registry"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name not in (scope, module):
            raise
        _scopes_without_registry_module.add(scope)
        return False
    return True
