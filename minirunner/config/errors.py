"""Config errors that are also the exception classes MMEngine documents for the same cases.

Code written for MMEngine catches ``KeyError`` (a reserved key, an unset environment
variable), ``OSError`` (an unsupported format in ``Config.fromstring``) or ``ImportError``
(a module in ``custom_imports`` that cannot be imported); these classes
let that code keep working while the message follows our convention (key, problem, fix).
"""

from __future__ import annotations

from minirunner.utils import ConfigError


class ConfigKeyError(ConfigError, KeyError):
    """A :class:`ConfigError` that ``except KeyError`` also catches."""


class ConfigOSError(ConfigError, OSError):
    """A :class:`ConfigError` that ``except OSError`` also catches."""


class ConfigImportError(ConfigError, ImportError):
    """A :class:`ConfigError` that ``except ImportError`` also catches."""
