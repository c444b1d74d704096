"""Small helpers shared by every layer."""

from .errors import ConfigError, one_line_error
from .manager import ManagerMeta, ManagerMixin
from .suggest import closest_matches, did_you_mean, quoted_list

__all__ = ["ConfigError", "ManagerMeta", "ManagerMixin", "one_line_error", "closest_matches", "did_you_mean", "quoted_list"]
