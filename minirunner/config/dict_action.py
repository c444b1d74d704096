"""`DictAction`: argparse support for ``--cfg-options key=value ...``."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from minirunner.utils import ConfigError

_CLOSING = {"[": "]", "(": ")"}


class DictAction(argparse.Action):
    """Collect ``KEY=VALUE`` items into a dict, parsing each value.

    Values are parsed as int, float, ``true``/``false``, ``None``, quoted or plain strings,
    comma-separated lists (``a,b,c``), and nested brackets (``[(1,2),(3,4)]``; brackets
    give lists, parentheses give tuples).

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        >>> parser.parse_args(['--cfg-options', 'a.b=1', 'c=x,y']).cfg_options
        {'a.b': 1, 'c': ['x', 'y']}
    """

    def __init__(self, option_strings: Sequence[str], dest: str, nargs: Any = "+", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in [values] if isinstance(values, str) else values:
            key, value = parse_option(item, option_string or self.dest)
            options[key] = value
        setattr(namespace, self.dest, options)


def parse_option(item: str, option: str = "--cfg-options") -> tuple[str, Any]:
    """Split ``'a.b=1'`` into ``('a.b', 1)``; a ConfigError explains a malformed item."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"{option}: the item {item!r} is not KEY=VALUE; write it like "
            "optim_wrapper.optimizer.lr=0.01 (no spaces around '=')"
        )
    try:
        return key, parse_value(text)
    except ValueError as error:
        raise ConfigError(f"{option}: cannot parse the value of {key!r} ({text!r}): {error}") from None


def parse_value(text: str) -> Any:
    """Parse the text after ``=`` of one ``--cfg-options`` item."""
    text = text.strip()
    if text[:1] in _CLOSING and _matching_close(text) == len(text) - 1:
        items = _split_top_level(text[1:-1])
        parsed = [parse_value(part) for part in items]
        return parsed if text[0] == "[" else tuple(parsed)
    parts = _split_top_level(text)
    if len(parts) > 1 or text.endswith(","):
        return [parse_value(part) for part in parts]
    return _parse_scalar(text)


def _matching_close(text: str) -> int:
    open_brackets, quote = [], ""
    for index, char in enumerate(text):
        # Brackets inside a quoted string are text, e.g. name='[a'.
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _CLOSING:
            open_brackets.append(char)
        elif char in "])":
            if not open_brackets or _CLOSING[open_brackets.pop()] != char:
                break
            if not open_brackets:
                return index
    raise ValueError(f"unbalanced brackets in {text!r}")


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets or quotes; a trailing comma adds no item."""
    parts, open_brackets, current, quote = [], [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _CLOSING:
            open_brackets.append(char)
        elif char in "])":
            if not open_brackets or _CLOSING[open_brackets.pop()] != char:
                raise ValueError(f"unbalanced brackets in {text!r}")
        if char == "," and not open_brackets and not quote:
            parts.append(current)
            current = ""
        else:
            current += char
    if open_brackets:
        raise ValueError(f"unbalanced brackets in {text!r}")
    parts.append(current)
    return [part for part in parts if part.strip()]


def _parse_scalar(text: str) -> Any:
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text
