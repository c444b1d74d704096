"""`ConfigDict`: an attribute-access dict that fails loudly on missing keys."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Callable

from addict import Dict

from minirunner.utils import did_you_mean, quoted_list

DELETE_KEY = "_delete_"

# Only these are turned into ConfigDicts. An instance of any other dict subclass is the
# user's own type (a defaultdict, a dict with methods) and keeps its class, as in MMEngine.
_CONVERTED_DICT_TYPES = (dict, OrderedDict)


class ConfigDict(Dict):
    """A dict whose keys are also attributes, with nested dicts converted on the way in.

    Plain ``dict`` and ``OrderedDict`` values (also inside lists and tuples) become
    ``ConfigDict``; values of other dict subclasses keep their class. Unlike a plain
    ``addict.Dict``, reading a missing key raises instead of returning an empty dict,
    and the error lists the keys that exist:

    Example:
        >>> cfg = ConfigDict(optimizer=dict(type='SGD', lr=0.1))
        >>> cfg.optimizer.lr
        0.1
        >>> cfg.optimzer  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        AttributeError: no key 'optimzer' ... Did you mean 'optimizer'?
    """

    @classmethod
    def _hook(cls, item: Any) -> Any:
        if type(item) in _CONVERTED_DICT_TYPES:
            return cls(item)
        # Exact lists and tuples only: a namedtuple cannot be rebuilt from one iterable.
        if type(item) in (list, tuple):
            return type(item)(cls._hook(elem) for elem in item)
        return item

    def __setitem__(self, name: Any, value: Any) -> None:
        # addict converts dicts only in the constructor; convert on every write, so
        # `cfg.model = dict(...)` gives attribute access too.
        super().__setitem__(name, self._hook(value))

    def __missing__(self, name: Any) -> Any:
        raise KeyError(self._missing_message(name))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(self._missing_message(name)) from None

    def _missing_message(self, name: Any) -> str:
        keys = [str(k) for k in self.keys()]
        hint = did_you_mean(str(name), keys) if isinstance(name, str) else ""
        present = quoted_list(keys) if keys else "none"
        return f"no key {name!r} in this config (keys: {present}).{hint}"

    def merge(self, other: dict | None = None, **kwargs: Any) -> None:
        """Merge ``other`` (and keyword arguments) into this dict in place, as ``_base_`` does.

        Dicts merge key by key, recursively; other values replace; a dict with
        ``_delete_=True`` replaces the existing dict instead of merging into it. A
        ``_delete_=True`` at the top level empties this dict first.

        Example:
            >>> cfg = ConfigDict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
            >>> cfg.merge(dict(optimizer=dict(lr=0.01)))
            >>> cfg.optimizer.to_dict()
            {'type': 'SGD', 'lr': 0.01, 'momentum': 0.9}
            >>> cfg.optimizer.merge(_delete_=True, type='Adam', lr=0.001)
            >>> cfg.optimizer.to_dict()
            {'type': 'Adam', 'lr': 0.001}
        """
        from .loader import merge, strip_delete_keys  # loader imports this module

        changes = dict(other or {})
        changes.update(kwargs)
        if changes.pop(DELETE_KEY, False):
            merged: dict = strip_delete_keys(changes)
        else:
            merged = merge(self, changes)
        dict.clear(self)
        for key, value in merged.items():
            self[key] = value

    def to_dict(self) -> dict:
        """Return a deep copy made of plain dicts, lists and tuples.

        Values of the user's own dict subclasses keep their class.
        """
        return _to_plain(self)


def rebuild_mapping(value: dict, items: dict, plain: Callable[[dict], dict]) -> dict:
    """A new mapping holding ``items``: of ``value``'s own class if that is a user's dict
    subclass, else made by ``plain`` (``ConfigDict`` or ``dict``)."""
    if isinstance(value, ConfigDict) or type(value) in _CONVERTED_DICT_TYPES:
        return plain(items)
    # A shallow copy keeps what the constructor needs (a defaultdict's factory).
    new = copy.copy(value)
    new.clear()
    new.update(items)
    return new


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return rebuild_mapping(value, {key: _to_plain(item) for key, item in value.items()}, dict)
    if isinstance(value, list):
        return [_to_plain(item) for item in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return tuple(_to_plain(item) for item in value)
    return copy.deepcopy(value) if isinstance(value, (list, tuple)) else value
