"""`ManagerMixin`: named, process-wide instances of a class, the newest one "current".

The message hub, the logger and the default scope are each looked up by name from anywhere
(a hook, a metric, a user's script) without passing them around. ``get_instance(name)``
creates the instance the first time and returns it afterwards; ``get_current_instance()``
returns the one most recently created or looked up that way.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections import OrderedDict
from typing import Any, TypeVar

T = TypeVar("T", bound="ManagerMixin")

_LOCK = threading.RLock()


class ManagerMeta(type):
    """Gives every class that uses :class:`ManagerMixin` its own table of instances, and
    checks that its ``__init__`` takes ``name`` (``get_instance`` passes it)."""

    def __init__(cls, *args: Any) -> None:
        super().__init__(*args)
        cls._instance_dict = OrderedDict()
        if "name" not in inspect.signature(cls.__init__).parameters:
            raise TypeError(f"{cls.__name__}.__init__ must take a `name` argument to be used with ManagerMixin")


class ManagerMixin(metaclass=ManagerMeta):
    """Named instances of a class, created on first use; the newest is the current one.

    Args:
        name: the instance's name (a non-empty string).

    Example:
        >>> class Tracker(ManagerMixin):
        ...     def __init__(self, name: str = '', unit: str = 's') -> None:
        ...         super().__init__(name)
        ...         self.unit = unit
        >>> first = Tracker.get_instance('train', unit='ms')
        >>> Tracker.get_instance('train') is first, Tracker.get_current_instance().instance_name
        (True, 'train')
    """

    _instance_dict: "OrderedDict[str, Any]"

    def __init__(self, name: str = "", **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{type(self).__name__} needs a non-empty string name, got {name!r}")
        self._instance_name = name

    @classmethod
    def get_instance(cls: type[T], name: str, **kwargs: Any) -> T:
        """The instance called ``name``, created with ``kwargs`` if there is none yet; it
        becomes the current instance. ``kwargs`` for an existing instance are ignored with a
        warning."""
        if not isinstance(name, str):
            raise TypeError(f"{cls.__name__}.get_instance: name must be a str, got {type(name).__name__}")
        with _LOCK:
            instances = cls._instance_dict
            if name not in instances:
                instances[name] = cls(name=name, **kwargs)
            elif kwargs:
                warnings.warn(
                    f"{cls.__name__} '{name}' already exists; get_instance ignores the arguments "
                    f"{sorted(kwargs)} (they only apply when the instance is created)",
                    stacklevel=2,
                )
            instances.move_to_end(name)
            return instances[name]

    @classmethod
    def get_current_instance(cls: type[T]) -> T:
        """The instance most recently created or looked up with :meth:`get_instance`.

        Raises:
            RuntimeError: no instance was made with :meth:`get_instance` yet.
        """
        with _LOCK:
            if not cls._instance_dict:
                raise RuntimeError(
                    f"{cls.__name__}.get_current_instance(): no instance yet; create one with "
                    f"{cls.__name__}.get_instance(name) first"
                )
            return next(reversed(cls._instance_dict.values()))

    @classmethod
    def check_instance_created(cls, name: str) -> bool:
        """Whether :meth:`get_instance` has created an instance called ``name``."""
        return name in cls._instance_dict

    @property
    def instance_name(self) -> str:
        """The name this instance was created with."""
        return self._instance_name
