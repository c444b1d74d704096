"""`ConfigDict`: an attribute-access dict that fails loudly on missing keys."""

from __future__ import annotations

from typing import Any

from addict import Dict

from minirunner.utils import did_you_mean, quoted_list


class ConfigDict(Dict):
    """A dict whose keys are also attributes, with nested dicts converted on the way in.

    Unlike a plain ``addict.Dict``, reading a missing key raises instead of returning an
    empty dict, and the error lists the keys that exist:

    Example:
        >>> cfg = ConfigDict(optimizer=dict(type='SGD', lr=0.1))
        >>> cfg.optimizer.lr
        0.1
        >>> cfg.optimzer  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        AttributeError: no key 'optimzer' ... Did you mean 'optimizer'?
    """

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

    def to_dict(self) -> dict:
        """Return a deep copy made of plain dicts, lists and tuples."""
        return _to_plain(self)


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_plain(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_to_plain(item) for item in value)
    return value
