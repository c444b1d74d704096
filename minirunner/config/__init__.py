"""Configs: :class:`Config`, :class:`ConfigDict`, :class:`DictAction` and :class:`ConfigError`."""

from minirunner.utils import ConfigError

from .config import Config, import_custom_modules_from
from .config_dict import ConfigDict
from .dict_action import DictAction

__all__ = ["Config", "ConfigDict", "ConfigError", "DictAction", "import_custom_modules_from"]
