"""`MessageHub`: where the runner, the hooks and user code exchange logged values."""

from __future__ import annotations

import copy
import weakref
from typing import Any

from .history_buffer import HistoryBuffer


class MessageHub:
    """Scalars with history (losses, lr, times, metrics) and plain runtime information.

    The Runner owns one hub and makes it current, so code that cannot reach the runner can
    call :meth:`get_current_instance`.

    Example:
        >>> hub = MessageHub('demo')
        >>> hub.update_scalar('train/loss', 0.5)
        >>> hub.update_info('epoch', 3)
        >>> hub.get_scalar('train/loss').current(), hub.get_info('epoch')
        (0.5, 3)
    """

    _current: "MessageHub | None" = None
    # Weak, so the hubs of finished runners can be freed.
    _instances: "weakref.WeakValueDictionary[str, MessageHub]" = weakref.WeakValueDictionary()

    def __init__(self, name: str = "minirunner") -> None:
        self.name = name
        self._log_scalars: dict[str, HistoryBuffer] = {}
        self._runtime_info: dict[str, Any] = {}
        self._not_resumed: set[str] = set()  # keys updated with resumed=False
        MessageHub._instances[name] = self

    # ------------------------------------------------------------------ current instance
    @classmethod
    def get_current_instance(cls) -> "MessageHub":
        """The hub of the running Runner; a fresh one is made if there is none yet."""
        if cls._current is None:
            cls._current = MessageHub()
        return cls._current

    @classmethod
    def get_instance(cls, name: str) -> "MessageHub":
        """The hub called ``name``, made (and made current) if there is none yet."""
        hub = cls._instances.get(name)
        if hub is None:
            hub = MessageHub(name)
        hub.make_current()
        return hub

    def make_current(self) -> None:
        """Make this hub the one :meth:`get_current_instance` returns."""
        MessageHub._current = self

    # ------------------------------------------------------------------ scalars
    def update_scalar(self, key: str, value: Any, count: int = 1, resumed: bool = True) -> None:
        """Append ``value`` (a number or a tensor, converted only when read) to ``key``'s history.

        ``resumed=False`` leaves the key out of :meth:`state_dict`, so a resumed run starts
        its history afresh.
        """
        buffer = self._log_scalars.get(key)
        if buffer is None:
            buffer = self._log_scalars[key] = HistoryBuffer()
        buffer.update(value, count)
        if not resumed:
            self._not_resumed.add(key)

    def update_scalars(self, values: dict[str, Any], resumed: bool = True) -> None:
        """:meth:`update_scalar` for each item; a value may be ``dict(value=..., count=...)``."""
        for key, value in values.items():
            if isinstance(value, dict):
                self.update_scalar(key, value["value"], value.get("count", 1), resumed)
            else:
                self.update_scalar(key, value, 1, resumed)

    def get_scalar(self, key: str) -> HistoryBuffer:
        """The history of ``key``; a KeyError lists the keys that exist."""
        if key not in self._log_scalars:
            raise KeyError(f"no scalar {key!r} has been logged; logged keys: {sorted(self._log_scalars)}")
        return self._log_scalars[key]

    @property
    def log_scalars(self) -> dict[str, HistoryBuffer]:
        """Every scalar's history, by key."""
        return self._log_scalars

    # ------------------------------------------------------------------ runtime info
    def update_info(self, key: str, value: Any, resumed: bool = True) -> None:
        """Store ``value`` under ``key``, replacing the previous one (see :meth:`update_scalar`
        for ``resumed``)."""
        self._runtime_info[key] = value
        if not resumed:
            self._not_resumed.add(key)

    def update_info_dict(self, values: dict[str, Any], resumed: bool = True) -> None:
        """:meth:`update_info` for each item."""
        self._runtime_info.update(values)
        if not resumed:
            self._not_resumed.update(values)

    def get_info(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        return self._runtime_info.get(key, default)

    @property
    def runtime_info(self) -> dict[str, Any]:
        """Every runtime value, by key."""
        return self._runtime_info

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Scalars and the runtime values that are plain Python types (safe for weights_only).

        Keys updated with ``resumed=False`` and runtime values of other types (modules,
        tensors) are left out.
        """
        skip = self._not_resumed
        return {
            "log_scalars": {
                key: buffer.state_dict() for key, buffer in self._log_scalars.items() if key not in skip
            },
            "runtime_info": {
                k: copy.deepcopy(v) for k, v in self._runtime_info.items() if k not in skip and _is_plain(v)
            },
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._log_scalars = {}
        for key, buffer_state in state.get("log_scalars", {}).items():
            buffer = HistoryBuffer()
            buffer.load_state_dict(buffer_state)
            self._log_scalars[key] = buffer
        self._runtime_info.update(state.get("runtime_info", {}))


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
