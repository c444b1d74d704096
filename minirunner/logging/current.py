"""The current logger and :func:`print_log`.

"Current" is the reference engine's notion: the newest :class:`MMLogger` made with
``MMLogger.get_instance`` (or made current here). The Runner makes its logger current, so
library code and user code print through it with ``print_log(msg, logger='current')``.
"""

from __future__ import annotations

import logging
from typing import Any

from ._current import make_current
from .logger import get_logger, to_level
from .mm_logger import MMLogger


def set_current_logger(logger: logging.Logger | str, name: str | None = None) -> None:
    """Make ``logger`` the one that ``print_log(..., logger='current')`` and
    ``MMLogger.get_current_instance()`` use.

    Args:
        logger: an :class:`MMLogger` or its instance name, or a ``logging`` logger (or
            the name of one, made with :func:`get_logger` if needed). A plain logger is reached through an
            ``MMLogger`` that passes every record on to it and follows its level.
        name: the instance name of that ``MMLogger`` (default: the logger's name); the
            Runner passes its experiment name, as the reference engine names its logger.
    """
    if isinstance(logger, MMLogger):
        make_current(logger)
        return
    if isinstance(logger, str) and name is None and logger in MMLogger._instance_dict:
        make_current(MMLogger._instance_dict[logger])  # the name of an MMLogger: that one
        return
    target = get_logger(logger) if isinstance(logger, str) else logger
    instance_name = name or target.name
    existing = MMLogger._instance_dict.get(instance_name)
    if existing is None:
        existing = MMLogger(instance_name, logger_name=target.name, log_level="NOTSET")
    existing.parent = target  # also for a detached logger that logging.getLogger does not know
    make_current(existing)


def get_current_logger() -> MMLogger:
    """The logger that ``print_log(..., logger='current')`` writes to: the running Runner's,
    else the newest ``MMLogger``, else the instance 'minirunner'."""
    return MMLogger.get_current_instance()


def print_log(
    msg: Any,
    logger: logging.Logger | str | None = None,
    level: int | str = logging.INFO,
) -> None:
    """Log ``msg`` through ``logger``.

    Args:
        msg: the message.
        logger: None prints with ``print``; ``'silent'`` drops the message; ``'current'``
            uses the current logger (the running Runner's, else the newest ``MMLogger``);
            a ``logging.Logger`` is used as it is; any other string names an ``MMLogger``
            instance or, failing that, a logger made with ``logging.getLogger``.
        level: a ``logging`` level or its name.

    Raises:
        ValueError: no MMLogger instance or logger of that name exists.
        TypeError: ``logger`` is of another type.

    Example:
        >>> print_log('hello', logger='current')  # doctest: +SKIP
        11/21 19:29:12 - minirunner - INFO - hello
    """
    if logger is None:
        print(msg)
    elif isinstance(logger, logging.Logger):
        logger.log(to_level(level), msg)
    elif logger == "silent":
        return
    elif logger == "current":
        MMLogger.get_current_instance().log(to_level(level), msg)
    elif isinstance(logger, str):
        _named_logger(logger).log(to_level(level), msg)
    else:
        raise TypeError(
            f"print_log: logger must be None, 'current', 'silent', a logger name or a "
            f"logging.Logger, got {type(logger).__name__}"
        )


def _named_logger(name: str) -> logging.Logger:
    # Looked up without making it current: the reference engine's get_instance lookup here
    # also switches where later 'current' lines go, which no caller expects of a print.
    instance = MMLogger._instance_dict.get(name)
    if instance is not None:
        return instance
    known = logging.Logger.manager.loggerDict.get(name)
    if isinstance(known, logging.Logger):
        return known
    raise ValueError(
        f"print_log: no logger named {name!r} has been created; pass 'current', 'silent', None, "
        "a logging.Logger, or the name of an MMLogger (MMLogger.get_instance(name)) or of a "
        "logger made with get_logger()"
    )
