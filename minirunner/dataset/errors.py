"""The dataset package's error class for values of the wrong type."""

from __future__ import annotations

from minirunner.utils import ConfigError


class DatasetTypeError(ConfigError, TypeError):
    """A dataset argument or pipeline entry of the wrong type: a ``TypeError`` as in the
    reference, and a :class:`ConfigError` naming the key."""
