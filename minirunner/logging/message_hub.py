"""`MessageHub`: where the runner, the hooks and user code exchange logged values."""

from __future__ import annotations

import copy
import logging
from typing import Any, Iterable

import torch

from minirunner.utils.manager import ManagerMixin

from ._current import make_current
from .current import print_log
from .errors import LoggingUsageError
from .history_buffer import HistoryBuffer


class MessageHub(ManagerMixin):
    """Scalars with history (losses, lr, times, metrics) and plain runtime information.

    Instances are named and reached from anywhere as in the reference engine:
    ``MessageHub.get_instance(name)`` creates or finds one (and makes it current),
    ``MessageHub.get_current_instance()`` returns the newest. The Runner makes its own hub
    current, so a hook or a metric can call ``get_current_instance()``.

    Values may be tensors: they are kept as tensors and turned into numbers only when read
    (the reference engine calls ``.item()`` at once, which waits for the GPU every time).

    Args:
        name: the instance name.
        log_scalars: histories to start with, by key.
        runtime_info: runtime values to start with, by key.
        resumed_keys: for keys of either, whether :meth:`state_dict` saves them (default True).

    Example:
        >>> hub = MessageHub.get_instance('demo')
        >>> hub.update_scalar('train/loss', 0.5)
        >>> hub.update_info('epoch', 3)
        >>> hub.get_scalar('train/loss').current(), hub.get_info('epoch')
        (0.5, 3)
    """

    def __init__(
        self,
        name: str = "minirunner",
        log_scalars: dict[str, HistoryBuffer] | None = None,
        runtime_info: dict[str, Any] | None = None,
        resumed_keys: dict[str, bool] | None = None,
    ) -> None:
        super().__init__(name)
        self._log_scalars: dict[str, HistoryBuffer] = _as_dict("log_scalars", log_scalars)
        self._runtime_info: dict[str, Any] = _as_dict("runtime_info", runtime_info)
        resumed = _as_dict("resumed_keys", resumed_keys)
        for key, value in self._log_scalars.items():
            if not isinstance(value, HistoryBuffer):
                raise LoggingUsageError(
                    f"MessageHub: log_scalars[{key!r}] must be a HistoryBuffer, got {type(value).__name__}"
                )
        for key in resumed:
            if key not in self._log_scalars and key not in self._runtime_info:
                raise LoggingUsageError(
                    f"MessageHub: resumed_keys names {key!r}, which is in neither log_scalars nor runtime_info"
                )
        # Only the keys saved with resumed=False are recorded: the per-iteration updates
        # (resumed=True, the default) then cost no bookkeeping at all.
        self._not_resumed: set[str] = {key for key, value in resumed.items() if not value}

    # ------------------------------------------------------------------ instances
    @classmethod
    def get_current_instance(cls) -> "MessageHub":
        """The newest hub made with :meth:`get_instance` or :meth:`make_current` (the running
        Runner's); when there is none yet, the hub called 'minirunner' is made."""
        if not cls._instance_dict:
            cls.get_instance("minirunner")
        return super().get_current_instance()

    def make_current(self) -> None:
        """Make this hub the one :meth:`get_current_instance` returns (and the one
        :meth:`get_instance` returns for its name)."""
        make_current(self)

    @property
    def name(self) -> str:
        """The instance name (the same as :attr:`instance_name`)."""
        return self.instance_name

    # ------------------------------------------------------------------ scalars
    def update_scalar(self, key: str, value: Any, count: int = 1, resumed: bool = True) -> None:
        """Append ``value`` (a number or a one-element tensor, converted only when read) to
        ``key``'s history; ``count``: how many samples it stands for.

        ``resumed=False`` leaves the key out of :meth:`state_dict`, so a resumed run starts
        its history afresh. A key keeps the ``resumed`` it was first given: asking for
        ``resumed=False`` on a key that is saved raises an ``AssertionError`` (as in the
        reference engine); the default ``resumed=True`` on a key first given False keeps it
        unsaved (the reference engine raises there too; checking it would cost every update).
        """
        buffer = self._log_scalars.get(key)
        if buffer is None:
            buffer = self._log_scalars[key] = HistoryBuffer()
            if not resumed:
                self._not_resumed.add(key)
        elif not resumed:
            self._check_not_resumed(key)
        if count == 1 and type(buffer) is HistoryBuffer:
            # HistoryBuffer.update's two usual cases, written out: the runner's hooks log
            # four values per iteration, and the call would cost more than the append.
            kind = type(value)
            if kind is float and not buffer._pending:
                buffer._values.append(value)
            elif kind is torch.Tensor and not value.requires_grad:
                buffer._pending.append(value)
            else:
                buffer.update(value, count)
                return
            counts = buffer._counts
            counts.append(1)
            if len(counts) > buffer._trim_at:
                buffer._trim()
            return
        buffer.update(value, count)

    def update_scalars(self, log_dict: dict[str, Any], resumed: bool = True) -> None:
        """:meth:`update_scalar` for each item; a value may be ``dict(value=..., count=...)``
        (``count`` defaults to 1)."""
        if not isinstance(log_dict, dict):
            raise TypeError(f"MessageHub.update_scalars: log_dict must be a dict, got {type(log_dict).__name__}")
        for key, value in log_dict.items():
            if isinstance(value, dict):
                if "value" not in value:
                    raise LoggingUsageError(
                        f"MessageHub.update_scalars: {key!r} is a dict without 'value'; use "
                        "dict(value=..., count=...)"
                    )
                self.update_scalar(key, value["value"], value.get("count", 1), resumed)
            else:
                self.update_scalar(key, value, 1, resumed)

    def get_scalar(self, key: str) -> HistoryBuffer:
        """The history of ``key``; a KeyError lists the keys that exist."""
        buffer = self._log_scalars.get(key)
        if buffer is None:
            raise KeyError(f"no scalar {key!r} has been logged; logged keys: {sorted(self._log_scalars)}")
        return buffer

    @property
    def log_scalars(self) -> dict[str, HistoryBuffer]:
        """Every scalar's history, by key (the hub's own dict, not a copy)."""
        return self._log_scalars

    # ------------------------------------------------------------------ runtime info
    def update_info(self, key: str, value: Any, resumed: bool = True) -> None:
        """Store ``value`` under ``key``, replacing the previous one (see
        :meth:`update_scalar` for ``resumed``)."""
        if not resumed and key not in self._not_resumed:
            self._check_not_resumed(key)
        self._runtime_info[key] = value

    def update_info_dict(self, info_dict: dict[str, Any], resumed: bool = True) -> None:
        """:meth:`update_info` for each item."""
        if not isinstance(info_dict, dict):
            raise TypeError(f"MessageHub.update_info_dict: info_dict must be a dict, got {type(info_dict).__name__}")
        if not resumed:
            for key in info_dict:
                self._check_not_resumed(key)
        self._runtime_info.update(info_dict)

    def get_info(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` (not a copy), or ``default``."""
        return self._runtime_info.get(key, default)

    def pop_info(self, key: str, default: Any = None) -> Any:
        """Remove ``key`` and return its value, or ``default`` when it is not there."""
        return self._runtime_info.pop(key, default)

    @property
    def runtime_info(self) -> dict[str, Any]:
        """Every runtime value, by key (the hub's own dict, not a copy)."""
        return self._runtime_info

    # ------------------------------------------------------------------ resumed keys
    def _check_not_resumed(self, key: str) -> None:
        """Mark ``key`` as not saved, unless it is already known as saved."""
        if key in self._not_resumed:
            return
        if key in self._log_scalars and len(self._log_scalars[key]) or key in self._runtime_info:
            raise LoggingUsageError(
                f"MessageHub: {key!r} was first updated with resumed=True and cannot be changed to "
                "resumed=False; a key keeps the resumed it was first given"
            )
        self._not_resumed.add(key)

    @property
    def resumed_keys(self) -> dict[str, bool]:
        """Whether :meth:`state_dict` saves each key of :attr:`log_scalars` and :attr:`runtime_info`."""
        return {key: key not in self._not_resumed for key in _keys(self._log_scalars, self._runtime_info)}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """``log_scalars``, ``runtime_info`` and ``resumed_keys``, the reference engine's keys,
        holding only plain Python values so ``torch.load(weights_only=True)`` reads them.

        A history is saved as ``HistoryBuffer.state_dict()`` (lists) rather than as the
        object. Keys updated with ``resumed=False`` are left out (``resumed_keys`` names them
        with False), and so are runtime values of other types (modules, tensors).
        """
        skip = self._not_resumed
        scalars = {key: buffer.state_dict() for key, buffer in self._log_scalars.items() if key not in skip}
        info = {k: copy.deepcopy(v) for k, v in self._runtime_info.items() if k not in skip and _is_plain(v)}
        resumed = {key: True for key in _keys(scalars, info)}
        resumed.update((key, False) for key in skip)
        return {"log_scalars": scalars, "runtime_info": info, "resumed_keys": resumed}

    def load_state_dict(self, state_dict: "dict | MessageHub") -> None:
        """Add what :meth:`state_dict` returned (or another hub's contents) to this hub;
        loaded keys replace keys of the same name.

        Also reads the format written before ``resumed_keys`` existed (the other two keys
        only), and histories given as ``HistoryBuffer`` objects.
        """
        if isinstance(state_dict, MessageHub):
            state_dict = {
                "log_scalars": {k: copy.deepcopy(v) for k, v in state_dict.log_scalars.items()},
                "runtime_info": state_dict.runtime_info,
                "resumed_keys": state_dict.resumed_keys,
            }
        for key, value in state_dict.get("log_scalars", {}).items():
            if isinstance(value, HistoryBuffer):
                self._log_scalars[key] = value
            elif isinstance(value, dict) and {"values", "counts", "max_length"} <= value.keys():
                buffer = HistoryBuffer()
                buffer.load_state_dict(value)
                self._log_scalars[key] = buffer
            else:
                print_log(
                    f"message hub: log_scalars[{key!r}] is not a history ({type(value).__name__}); not resumed",
                    logger="current",
                    level=logging.WARNING,
                )
        for key, value in state_dict.get("runtime_info", {}).items():
            self._runtime_info[key] = copy.deepcopy(value)
        for key, resumed in state_dict.get("resumed_keys", {}).items():
            if resumed:
                self._not_resumed.discard(key)
            else:
                self._not_resumed.add(key)


def _keys(*dicts: dict) -> Iterable[str]:
    return dict.fromkeys(key for d in dicts for key in d)


def _as_dict(name: str, value: dict | None) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"MessageHub: {name} must be a dict or None, got {type(value).__name__}")
    return dict(value)


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
