"""Logging: the ``minirunner`` logger and :func:`print_log`."""

from .logger import (
    LOGGER_NAME,
    add_log_file,
    get_current_logger,
    get_logger,
    print_log,
    set_current_logger,
)

__all__ = [
    "LOGGER_NAME", "add_log_file", "get_current_logger", "get_logger", "print_log",
    "set_current_logger",
]
