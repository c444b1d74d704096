"""`DefaultScope`: which project's registries a build looks names up in, process-wide.

A downstream project registers its classes in child registries with its own scope
(``Registry('model', parent=MODELS, scope='myproj')``). Setting the default scope to
``'myproj'`` makes every ``build`` (also the Runner's own ``MODELS.build``) search the
``myproj`` registries first, then their parents, so configs can say ``type='MyNet'``
instead of ``type='myproj.MyNet'``.
"""

from __future__ import annotations

import itertools
import warnings
from contextlib import contextmanager
from typing import Iterator

from minirunner.utils import ManagerMixin

# Names of the temporary and the forced instances; a counter, so two never collide.
_unique = itertools.count()


class DefaultScope(ManagerMixin):
    """A named default scope; the current instance decides where builds look names up.

    Args:
        name: the instance's name (the Runner uses its experiment name).
        scope_name: the scope, e.g. ``'minirunner'`` or a downstream project's package name.

    Example:
        >>> scope = DefaultScope.get_instance('doc-example', scope_name='myproj')
        >>> DefaultScope.get_current_instance().scope_name
        'myproj'
    """

    def __init__(self, name: str, scope_name: str) -> None:
        super().__init__(name)
        if not isinstance(scope_name, str) or not scope_name:
            raise TypeError(f"DefaultScope: scope_name must be a non-empty str, got {scope_name!r}")
        self._scope_name = scope_name

    @property
    def scope_name(self) -> str:
        """The scope builds use while this instance is current."""
        return self._scope_name

    @classmethod
    def get_current_instance(cls) -> "DefaultScope | None":  # type: ignore[override]
        """The current default scope, or None when none was created (unlike other managed
        classes, having no default scope is normal: builds then use the registry they
        were called on)."""
        if not cls._instance_dict:
            return None
        return super().get_current_instance()

    @classmethod
    @contextmanager
    def overwrite_default_scope(cls, scope_name: str | None) -> Iterator[None]:
        """Make ``scope_name`` the default scope inside the block; None changes nothing.

        Afterwards the instance that was current before is current again, and the
        temporary instance is gone.
        """
        if scope_name is None:
            yield
            return
        previous = cls.get_current_instance()
        name = f"overwrite-{scope_name}-{next(_unique)}"
        cls.get_instance(name, scope_name=scope_name)
        try:
            yield
        finally:
            cls._instance_dict.pop(name, None)
            if previous is not None and previous.instance_name in cls._instance_dict:
                cls._instance_dict.move_to_end(previous.instance_name)


def init_default_scope(scope: str) -> None:
    """Make ``scope`` the current default scope (scripts call this before building).

    The first call for a scope creates an instance named after it. If that instance exists
    but another scope is current, ``scope`` becomes current again with a warning, since
    code that set the other scope may not expect the switch.

    Example:
        >>> init_default_scope('minirunner')
        >>> DefaultScope.get_current_instance().scope_name
        'minirunner'
    """
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name == scope:
        return
    if not DefaultScope.check_instance_created(scope):
        DefaultScope.get_instance(scope, scope_name=scope)
        return
    if current is not None:
        warnings.warn(
            f"init_default_scope('{scope}'): the current default scope is "
            f"'{current.scope_name}'; switching it to '{scope}'",
            stacklevel=2,
        )
    # The instance called `scope` may hold another scope_name (get_instance(scope,
    # scope_name=...) by hand); a fresh name avoids reusing it.
    DefaultScope.get_instance(f"{scope}-{next(_unique)}", scope_name=scope)
