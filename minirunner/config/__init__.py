"""Configs: :class:`Config`, :class:`ConfigDict`, :class:`DictAction`, :func:`read_base` and :class:`ConfigError`."""

from minirunner.utils import ConfigError

from .auto_argparser import add_args
from .config import Config, import_custom_modules_from
from .config_dict import ConfigDict
from .dict_action import DictAction
from .errors import ConfigImportError, ConfigKeyError, ConfigOSError
from .python_style import read_base

__all__ = [
    "Config",
    "ConfigDict",
    "ConfigError",
    "ConfigImportError",
    "ConfigKeyError",
    "ConfigOSError",
    "DictAction",
    "add_args",
    "import_custom_modules_from",
    "read_base",
]
