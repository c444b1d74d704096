"""`MMLogger`: named loggers reached from anywhere, as in the reference engine.

How it relates to the ``minirunner`` logger: an ``MMLogger`` owns no console handler. It
hands every record it lets through to the ``logging`` logger named ``logger_name`` (default
``minirunner``, made by :func:`~minirunner.logging.get_logger`), whose handlers print it
(rank-aware, coloured on a terminal) and write it to the run's log file. So the Runner's
lines, ``print_log(..., logger='current')`` and a user's
``MMLogger.get_current_instance().info(...)`` in a hook reach the same console and file, one
line each. An ``MMLogger`` given ``log_file`` also writes to that file itself.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from typing import Any

from minirunner.dist import get_local_rank, get_rank, get_world_size
from minirunner.utils.errors import ConfigError
from minirunner.utils.manager import ManagerMixin

from .logger import _DATE_FORMAT, _FORMAT, LOGGER_NAME, get_logger, make_file_handler, to_level


class _FileHandlerCfgError(ConfigError, AssertionError):
    """``file_handler_cfg`` without ``type``: the reference engine asserts it."""


class MMLogger(logging.Logger, ManagerMixin):
    """A ``logging.Logger`` created and looked up by instance name, like the reference's.

    Args:
        name: the instance name (for :meth:`get_instance` and ``print_log(logger=name)``).
        logger_name: the ``name`` its records carry, and the ``logging`` logger whose
            handlers (console, run log file) print them. Default ``'minirunner'`` (the
            reference engine's is ``'mmengine'``).
        log_file: also write lines to this file. Only rank 0 writes it, unless
            ``distributed`` is True or ``log_level`` is DEBUG in a multi-process run: then
            each rank writes its own, named ``<stem>_<user>@<host>_device<id>_rank<r><suffix>``.
        log_level: the lowest level logged (a number or a name). ``'NOTSET'`` follows the
            level of the ``logger_name`` logger, i.e. the level a Runner chose.
        file_mode: how ``log_file`` is opened (``'w'`` replaces it, ``'a'`` appends).
        distributed: every rank writes its own ``log_file``.
        file_handler_cfg: a handler class from ``logging.handlers`` by name and its
            arguments, e.g. ``dict(type='RotatingFileHandler', maxBytes=2**20)``; the
            file name defaults to ``log_file``.

    Unlike a plain ``logging.Logger``, an ``MMLogger`` is not known to ``logging.getLogger``.

    Example:
        >>> logger = MMLogger.get_instance('demo', log_level='DEBUG')
        >>> MMLogger.get_current_instance() is logger, logger.instance_name, logger.name
        (True, 'demo', 'minirunner')
    """

    def __init__(
        self,
        name: str,
        logger_name: str = LOGGER_NAME,
        log_file: str | None = None,
        log_level: int | str = "INFO",
        file_mode: str = "w",
        distributed: bool = False,
        file_handler_cfg: dict | None = None,
    ) -> None:
        level = to_level(log_level)
        logging.Logger.__init__(self, logger_name, level)
        ManagerMixin.__init__(self, name)
        # Records go on to the shared logger of that name (see the module docstring).
        self.parent = get_logger(logger_name)
        self._log_file: str | None = None
        if log_file is not None:
            self._add_file(log_file, level, file_mode, distributed, file_handler_cfg)

    def _add_file(
        self, log_file: str, level: int, file_mode: str, distributed: bool, file_handler_cfg: dict | None
    ) -> None:
        rank, world_size = get_rank(), get_world_size()
        per_rank = (distributed or level <= logging.DEBUG) and world_size > 1
        if per_rank:
            log_file = _rank_file_name(log_file, rank)
        elif rank != 0:
            return  # rank 0 writes the one shared file
        if file_handler_cfg is None:
            handler: logging.Handler = make_file_handler(log_file, level, file_mode)
        else:
            handler = _build_file_handler(dict(file_handler_cfg), log_file)
            handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
            handler.setLevel(level)
        self.addHandler(handler)
        self._log_file = log_file

    @property
    def log_file(self) -> str | None:
        """The file this logger writes (with the rank in its name for per-rank files), or None."""
        return self._log_file

    @classmethod
    def get_current_instance(cls) -> "MMLogger":
        """The newest logger made with :meth:`get_instance` (or made current with
        ``set_current_logger``); when there is none yet, the instance 'minirunner', which
        follows the level of the ``minirunner`` logger."""
        if not cls._instance_dict:
            cls.get_instance(LOGGER_NAME, log_level="NOTSET")
        return super().get_current_instance()

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        # `logging` caches this per logger and clears the caches of the loggers it manages
        # when a level changes; an MMLogger is not among them and may follow its parent's
        # level, so it answers afresh (logging calls are not on the per-iteration path).
        if self.disabled or self.manager.disable >= level:
            return False
        return level >= self.getEffectiveLevel()


def _rank_file_name(log_file: str, rank: int) -> str:
    folder, base = os.path.split(log_file)
    stem, suffix = os.path.splitext(base)
    host = _host()
    device = get_local_rank()
    host_part = f"_{host}" if host else ""
    return os.path.join(folder, f"{stem}{host_part}_device{device}_rank{rank}{suffix}")


def _host() -> str:
    try:
        import getpass
        import socket

        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:  # noqa: BLE001 (no user name in some containers: leave it out of the file name)
        return ""


def _build_file_handler(cfg: dict, log_file: str) -> logging.Handler:
    if "type" not in cfg:
        raise _FileHandlerCfgError(
            "needs 'type', the name of a handler class in logging.handlers such as 'RotatingFileHandler'",
            key="file_handler_cfg",
        )
    name = cfg.pop("type")
    handler_class: Any = getattr(logging.handlers, str(name), None) or getattr(logging, str(name), None)
    if not (isinstance(handler_class, type) and issubclass(handler_class, logging.FileHandler)):
        known = sorted(
            n for n, c in vars(logging.handlers).items() if isinstance(c, type) and issubclass(c, logging.FileHandler)
        )
        raise ConfigError(f"{name!r} is not a file handler of logging.handlers; use one of {known}", key="file_handler_cfg.type")
    cfg.setdefault("filename", log_file)
    return handler_class(**cfg)
