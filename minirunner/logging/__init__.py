"""Logging: the ``minirunner`` logger, ``MMLogger``, :func:`print_log`, the message hub, progress bars."""

from .current import get_current_logger, print_log, set_current_logger
from .history_buffer import HistoryBuffer
from .logger import LOGGER_NAME, RecordHold, add_log_file, get_logger, log_to_files_only, send_warnings_to_file
from .message_hub import MessageHub
from .mm_logger import MMLogger
from .progress import progress_bar
from .tracebacks import install_rich_traceback

__all__ = [
    "HistoryBuffer", "MMLogger", "MessageHub", "LOGGER_NAME", "RecordHold", "add_log_file", "get_current_logger",
    "get_logger", "install_rich_traceback", "log_to_files_only", "print_log", "progress_bar",
    "send_warnings_to_file", "set_current_logger",
]
