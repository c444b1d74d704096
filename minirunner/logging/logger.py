"""The ``minirunner`` logger: its console handler and log files.

Console lines look like ``11/21 19:29:12 - minirunner - INFO - message``. On a terminal the
level name is coloured with rich (and a message logged with ``extra={'syntax': 'python'}``
has its body highlighted); elsewhere (CI, pipes, files) lines are plain text. Ranks other
than 0 print warnings and errors only, so a job on 8 processes does not print 8 copies.
While a progress bar from :mod:`minirunner.logging.progress` is open, lines are printed
above it rather than through it.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from minirunner.dist import get_rank

from . import progress

LOGGER_NAME = "minirunner"
_DATE_FORMAT = "%m/%d %H:%M:%S"
_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
_LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "green",
    "WARNING": "bold yellow",
    "ERROR": "bold red",
    "CRITICAL": "bold white on red",
}


class _ConsoleHandler(logging.Handler):
    """Writes to stdout; colours the level name with rich when stdout is a terminal."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self._stream = stream
        self._console: Any = None

    @property
    def stream(self) -> Any:
        # Looked up at each write, so pytest's capture and redirected stdout are honoured.
        return self._stream if self._stream is not None else sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if get_rank() != 0 and record.levelno < logging.WARNING:
                return
            stream = self.stream
            if progress._open_bars:
                with progress.external_write(stream):
                    self._write(record, stream)
            else:
                self._write(record, stream)
        except Exception:
            self.handleError(record)

    def _write(self, record: logging.LogRecord, stream: Any) -> None:
        if getattr(stream, "isatty", lambda: False)():
            self._emit_rich(record, stream)
        else:
            stream.write(self.format(record) + "\n")
            stream.flush()

    def _emit_rich(self, record: logging.LogRecord, stream: Any) -> None:
        from rich.console import Console
        from rich.text import Text

        if self._console is None or self._console.file is not stream:
            self._console = Console(file=stream, soft_wrap=True, highlight=False)
        time = self.formatter.formatTime(record, _DATE_FORMAT) if self.formatter else ""
        message = record.getMessage()
        body = ""
        syntax = getattr(record, "syntax", None)
        if syntax and "\n" in message:
            message, body = message.split("\n", 1)
        if record.exc_info and self.formatter:
            message += "\n" + self.formatter.formatException(record.exc_info)
        line = Text.assemble(
            f"{time} - {record.name} - ",
            (record.levelname, _LEVEL_STYLES.get(record.levelname, "")),
            f" - {message}",
        )
        self._console.print(line, markup=False, emoji=False)
        if body:
            from rich.syntax import Syntax

            # ansi_dark uses the terminal's own palette, so it reads on light and dark themes.
            highlighted = Syntax(body, syntax, theme="ansi_dark", background_color="default", word_wrap=True)
            self._console.print(highlighted)


def get_logger(name: str = LOGGER_NAME, log_level: int | str | None = None) -> logging.Logger:
    """Return the logger ``name``, giving it a console handler the first time.

    Loggers named ``minirunner.<something>`` share the ``minirunner`` console handler.
    ``log_level`` sets the level; when None, a new logger gets INFO and an existing one
    keeps the level it has (so looking a logger up never undoes a run's choice).
    """
    logger = logging.getLogger(name)
    root = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _ConsoleHandler) for h in root.handlers):
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
        root.addHandler(handler)
        root.propagate = False
        root.setLevel(logging.INFO)
    if name != LOGGER_NAME and not name.startswith(LOGGER_NAME + "."):
        # A run's own logger (e.g. named after the experiment) gets its own console handler.
        if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
            handler = _ConsoleHandler()
            handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
            logger.addHandler(handler)
            logger.propagate = False
    if log_level is not None:
        logger.setLevel(to_level(log_level))
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    return logger


class _FolderMakingFileHandler(logging.FileHandler):
    """A file handler that creates its file, and the folder, with the first line it writes:
    a run that fails before logging anything (a config error) leaves no empty log folder."""

    def __init__(self, path: str, mode: str = "a") -> None:
        super().__init__(path, mode=mode, encoding="utf-8", delay=True)

    def _open(self):  # noqa: ANN202 (logging's own signature)
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        return super()._open()


def add_log_file(
    path: str, logger: logging.Logger | None = None, log_level: int | str = logging.INFO
) -> logging.FileHandler:
    """Also write ``logger``'s lines (default: the current logger) to the file ``path``.

    The file (and its folder) is created when the first line is written.

    Only rank 0 should call this (the Runner does). Returns the handler so the caller can
    remove and close it when the run ends.
    """
    if logger is None:
        from .current import get_current_logger  # current.py builds on this module

        logger = get_current_logger()
    handler = make_file_handler(path, log_level)
    logger.addHandler(handler)
    return handler


def make_file_handler(path: str, log_level: int | str = logging.INFO, mode: str = "a") -> logging.FileHandler:
    """A handler writing plain lines (the console's format) to ``path``, opened with
    ``mode`` and created, with its folder, when the first line is written."""
    handler = _FolderMakingFileHandler(path, mode)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
    handler.setLevel(to_level(log_level))
    return handler


def send_warnings_to_file(path: str) -> logging.FileHandler:
    """Write Python warnings (from any library) to the file ``path`` instead of stderr; the
    file, and its folder, are created with the first warning.

    Ranks other than 0 call this (the Runner does): under torchrun every process meets the
    same library warnings, and one copy per process on the console buries the rest. Rank 0
    still prints them; a warning that only one rank meets is kept in that rank's file.
    Calling it again moves the warnings to the new file.
    """
    target = logging.getLogger("py.warnings")
    for handler in list(target.handlers):
        if isinstance(handler, _FolderMakingFileHandler):  # an earlier run's file in this process
            target.removeHandler(handler)
            handler.close()
    handler = make_file_handler(path, logging.WARNING)
    target.addHandler(handler)
    target.propagate = False  # without a handler above it, logging would print it to stderr

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        target.warning("%s", warnings.formatwarning(message, category, filename, lineno, line).rstrip())

    warnings.showwarning = show
    return handler


def file_handlers(logger: logging.Logger) -> list[logging.FileHandler]:
    """The file handlers of ``logger`` and of the loggers its records pass on to: an
    ``MMLogger`` passes its lines on to the ``minirunner`` logger, which holds the run's
    log file."""
    found: list[logging.FileHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += [h for h in current.handlers if isinstance(h, logging.FileHandler)]
        current = current.parent if current.propagate else None
    return found


class RecordHold:
    """Holds back what a logger's handlers (console, log file) would write, to write it later
    in the original order.

    The Runner builds the optimizer (which logs ``paramwise_options`` lines) before the
    ``before_run`` hooks print the environment banner; holding the build's lines until after
    the banner keeps the log in reading order. The hold sits on the handlers, so records that
    reach them another way (an ``MMLogger`` handing its records over) are held too.

    Example:
        >>> hold = RecordHold(get_logger())  # doctest: +SKIP
        >>> ...; hold.stop(); print_the_banner(); hold.release()  # doctest: +SKIP
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._held: list[tuple[logging.Handler, logging.LogRecord]] = []
        self._filters: list[tuple[logging.Handler, Any]] = []
        for handler in logger.handlers:
            def hold(record: logging.LogRecord, handler: logging.Handler = handler) -> bool:
                self._held.append((handler, record))
                return False

            handler.addFilter(hold)
            self._filters.append((handler, hold))

    def stop(self) -> None:
        """Let new records through again (the held ones stay held)."""
        for handler, hold in self._filters:
            handler.removeFilter(hold)
        self._filters = []

    def release(self) -> None:
        """Stop holding, and write the held records in order."""
        self.stop()
        held, self._held = self._held, []
        for handler, record in held:
            handler.handle(record)


def log_to_files_only(logger: logging.Logger, level: int, message: str) -> None:
    """Write ``message`` to ``logger``'s log files but not to the console: for what the
    console already showed another way (a Python warning, a one-line error).

    A file that cannot be written (the disk is full) is skipped silently: this is called
    while another error is being reported.
    """
    record = logger.makeRecord(logger.name, level, __file__, 0, message, None, None)
    raising, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        for handler in file_handlers(logger):
            if level >= handler.level:
                handler.handle(record)
    finally:
        logging.raiseExceptions = raising


def to_level(level: int | str) -> int:
    """A ``logging`` level from its number or its name (any case)."""
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).upper())
    if not isinstance(value, int):
        raise ValueError(
            f"unknown log level {level!r}; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
        )
    return value
