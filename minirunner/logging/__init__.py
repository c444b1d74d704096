"""Logging: the ``minirunner`` logger and :func:`print_log`."""

from .history_buffer import HistoryBuffer
from .logger import (
    LOGGER_NAME,
    add_log_file,
    get_current_logger,
    get_logger,
    print_log,
    set_current_logger,
)
from .message_hub import MessageHub

__all__ = [
    "HistoryBuffer", "MessageHub", "LOGGER_NAME", "add_log_file", "get_current_logger", "get_logger", "print_log",
    "set_current_logger",
]
