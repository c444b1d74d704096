"""Readable tracebacks when a run fails, and a copy of them in the run's log file."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Any

from . import progress
from .current import get_current_logger
from .logger import file_handlers


def install_rich_traceback(show_locals: bool = False) -> bool:
    """Print uncaught exceptions readably, and record them in the run's log file.

    Replaces ``sys.excepthook`` (once; calling again changes nothing). For an uncaught
    exception the new hook:

    - closes any open progress bar, so the traceback does not land inside one;
    - writes the plain, complete traceback to the log files of the current logger (the
      running Runner's ``<log_dir>/<timestamp>.log``), so the file says how the run ended;
    - prints the traceback with rich (highlighted source lines, torch's own frames folded)
      when stderr is a terminal, and Python's usual text otherwise (CI logs keep the exact
      standard format).

    Args:
        show_locals: also show each frame's local variables (rich only).

    Returns:
        True when tracebacks are printed with rich (stderr is a terminal).

    Example:
        >>> from minirunner.logging import install_rich_traceback
        >>> install_rich_traceback()  # doctest: +SKIP
    """
    use_rich = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if getattr(sys.excepthook, "_minirunner_hook", False):
        return use_rich
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        progress.close_all_bars()
        if not issubclass(exc_type, KeyboardInterrupt):
            log_exception_to_files(exc_type, exc, tb)
        if use_rich:
            _print_rich(exc_type, exc, tb, show_locals)
        else:
            previous(exc_type, exc, tb)

    hook._minirunner_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    return use_rich


def log_exception_to_files(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """Write the exception's traceback to every file handler of the current logger.

    Only files: the console gets its own (possibly rich) rendering from the excepthook.
    """
    logger = get_current_logger()
    handlers = file_handlers(logger)
    if not handlers:
        return
    record = logger.makeRecord(
        logger.name, logging.ERROR, __file__, 0, "the run stopped with an uncaught exception:", (), (exc_type, exc, tb)
    )
    for handler in handlers:
        handler.handle(record)


def _print_rich(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, show_locals: bool) -> None:
    from rich.console import Console
    from rich.traceback import Traceback

    suppress: list[Any] = []
    try:
        import torch

        suppress.append(torch)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    trace = Traceback.from_exception(exc_type, exc, tb, show_locals=show_locals, suppress=suppress)
    Console(stderr=True).print(trace)
