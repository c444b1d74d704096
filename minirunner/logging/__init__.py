"""Logging: the ``minirunner`` logger, :func:`print_log`, the message hub, progress bars."""

from .history_buffer import HistoryBuffer
from .logger import (
    LOGGER_NAME,
    add_log_file,
    get_current_logger,
    get_logger,
    log_to_files_only,
    print_log,
    set_current_logger,
)
from .message_hub import MessageHub
from .progress import progress_bar
from .tracebacks import install_rich_traceback

__all__ = [
    "HistoryBuffer", "MessageHub", "LOGGER_NAME", "add_log_file", "get_current_logger", "get_logger",
    "install_rich_traceback", "log_to_files_only", "print_log", "progress_bar", "set_current_logger",
]
