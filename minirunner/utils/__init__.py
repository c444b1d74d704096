"""Small helpers shared by every layer."""

from .errors import ConfigError
from .suggest import closest_matches, did_you_mean, quoted_list

__all__ = ["ConfigError", "closest_matches", "did_you_mean", "quoted_list"]
