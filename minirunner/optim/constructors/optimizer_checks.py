"""Checks of the numbers in an ``optimizer`` config (``lr``, ``momentum``, ``betas``...), so a
value such as ``lr='fast'`` or ``lr=-0.1`` fails with its key and the fix instead of inside
torch ("'<' not supported between instances of 'str' and 'float'").

Which arguments are numbers is read from the optimizer's signature: an argument whose
default is a number takes a number, one whose default is a tuple of numbers (``betas``)
takes a tuple of as many numbers. So there is no list per optimizer to keep up to date, and
registered user optimizers are checked the same way. ``lr`` and ``weight_decay`` are numbers
whatever the signature says: the constructor multiplies them itself (``paramwise_cfg``).

Types are checked before the optimizer is built; ranges are the optimizer's business (they
differ between optimizers), so a value is blamed for being negative only after the
optimizer rejected it.

Keys in the errors are relative to the optim wrapper config (``optimizer.lr``); the caller
adds the outer path (``optim_wrapper.``) with ``config_key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from minirunner.registry import OPTIMIZERS
from minirunner.utils import ConfigError

from .paramwise_checks import optimizer_class, signature_default

#: Arguments the constructor computes with, so they must be numbers for any optimizer.
CONSTRUCTOR_NUMBERS = ("lr", "weight_decay")


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but momentum=True is a mistake, not 1. Tensors are allowed:
    # torch takes lr (and betas) as tensors, e.g. for capturable optimizers.
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expected(cls: type | None, name: str) -> Any:
    """What ``name`` of optimizer ``cls`` takes: a number (its default), a tuple of numbers
    and Nones (its default), or None when the signature says nothing numeric about it."""
    default = signature_default(cls, name)
    if _is_number(default):
        return default
    if isinstance(default, tuple) and default and all(_is_number(v) or v is None for v in default):
        return default
    if name in CONSTRUCTOR_NUMBERS:
        return 0.0 if default is None else None
    return None


def _non_negative(expected: Any) -> bool:
    items = expected if isinstance(expected, tuple) else (expected,)
    return all(item is None or item >= 0 for item in items)


def _fits(value: Any, expected: Any) -> bool:
    if not isinstance(expected, tuple):
        return _is_number(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(expected):
        return False
    # An item whose default is None (Adafactor's eps=(None, 1e-3)) may stay None.
    return all(_is_number(v) or (v is None and e is None) for v, e in zip(value, expected))


def _example(name: str, value: Any, expected: Any, cls: type | None) -> str:
    if isinstance(value, str):
        try:
            return f"write the number without quotes: {name}={float(value)!r}"
        except ValueError:
            pass
    owner = f" ({cls.__name__}'s default)" if cls is not None and signature_default(cls, name) is not None else ""
    example = expected if expected != 0.0 or name != "lr" else 0.01
    return f"write e.g. {name}={example!r}{owner}"


def check_optimizer_numbers(optimizer_cfg: Mapping) -> None:
    """Raise a :class:`ConfigError` (key ``optimizer.<name>``) for a numeric argument of the
    optimizer that holds something other than a number (or tuple of numbers).

    Example:
        >>> check_optimizer_numbers(dict(type='SGD', lr='fast'))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        minirunner.utils.errors.ConfigError: optimizer.lr: must be a non-negative number, got 'fast' (str)...
    """
    cls = optimizer_class(optimizer_cfg)
    for name, value in optimizer_cfg.items():
        if name in ("type", "params"):
            continue
        expected = _expected(cls, str(name))
        if expected is None or _fits(value, expected):
            continue
        sign = "non-negative " if _non_negative(expected) else ""
        if isinstance(expected, tuple):
            what = f"a tuple of {len(expected)} {sign}numbers, like the default {expected!r}"
        else:
            what = f"a {sign}number"
        raise ConfigError(
            f"must be {what}, got {value!r} ({type(value).__name__}); "
            f"{_example(str(name), value, expected, cls)}",
            key=f"optimizer.{name}",
        )


def build_optimizer(optimizer_cfg: Mapping) -> torch.optim.Optimizer:
    """Build the optimizer from ``OPTIMIZERS``; a value the optimizer rejects for being
    negative is reported under its own key (``lr``) rather than the optimizer's.

    Call it inside ``config_key('optimizer')``, as the build errors' keys are relative to it.
    """
    try:
        return OPTIMIZERS.build(optimizer_cfg)
    except ConfigError as error:
        cause = error.__cause__
        # Only a ValueError of the optimizer itself (torch: "Invalid learning rate: -0.1");
        # a ConfigError cause already names its key.
        if isinstance(cause, ValueError) and not isinstance(cause, ConfigError):
            blamed = _negative_value_error(optimizer_cfg, cause)
            if blamed is not None:
                raise blamed from cause
        raise


def _negative_value_error(optimizer_cfg: Mapping, cause: ValueError) -> ConfigError | None:
    """The error for the negative value the optimizer rejected, or None if none is to blame.

    A negative value is blamed only when the optimizer's message shows it and the default
    is not negative itself, so an optimizer that takes negative values is not misread.
    """
    cls = optimizer_class(optimizer_cfg)
    message = str(cause)
    for name, value in optimizer_cfg.items():
        if name in ("type", "params"):
            continue
        expected = _expected(cls, str(name))
        if expected is None or not _non_negative(expected) or not _fits(value, expected):
            continue
        items = value if isinstance(expected, tuple) else (value,)
        shown = [item for item in items if _is_number(item) and item < 0 and str(item) in message]
        if shown:
            owner = cls.__name__ if cls is not None else "the optimizer"
            return ConfigError(
                f"must be non-negative, got {value!r} ({owner} raised: {message}); use "
                f"{'values' if isinstance(expected, tuple) else 'a value'} >= 0",
                key=str(name),
            )
    return None


__all__ = ["CONSTRUCTOR_NUMBERS", "build_optimizer", "check_optimizer_numbers"]
