"""Command-line options generated from a config's keys (``Config.auto_argparser``)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any


def add_args(parser: ArgumentParser, cfg: dict, prefix: str = "") -> ArgumentParser:
    """Add an option ``--<prefix><key>`` to ``parser`` for every setting in ``cfg``.

    Nested dicts give dotted names (``--model.depth``). The option's type follows the
    value's: a string takes any text, a bool becomes a flag (``store_true``), an int or a
    float is parsed as one, and a list or tuple takes one or more values of its first
    item's type. Values of other types (None, objects) and empty lists get no option,
    since their type cannot be known. Returns ``parser``.

    Example:
        >>> parser = add_args(ArgumentParser(), {'lr': 0.1, 'model': {'depth': 18}})
        >>> vars(parser.parse_args(['--lr', '0.5', '--model.depth', '50']))
        {'lr': 0.5, 'model.depth': 50}
    """
    for key, value in cfg.items():
        option = f"--{prefix}{key}"
        # bool before int: True is an int too.
        if isinstance(value, str):
            parser.add_argument(option)
        elif isinstance(value, bool):
            parser.add_argument(option, action="store_true")
        elif isinstance(value, int):
            parser.add_argument(option, type=int)
        elif isinstance(value, float):
            parser.add_argument(option, type=float)
        elif isinstance(value, dict):
            add_args(parser, value, f"{prefix}{key}.")
        elif isinstance(value, (list, tuple)) and value and _parsable(value[0]):
            parser.add_argument(option, type=type(value[0]), nargs="+")
    return parser


def _parsable(item: Any) -> bool:
    # bool('False') is True, so lists of bools get no option.
    return isinstance(item, (str, int, float)) and not isinstance(item, bool)
