"""The error raised for anything a config author can fix."""

from __future__ import annotations

import sys


class ConfigError(ValueError):
    """A problem in a config that its author can fix.

    The message has three parts: where (``key``, a dotted path such as
    ``optim_wrapper.optimizer.type``, when known), what is wrong, and how to fix it.
    Code that builds nested objects adds the outer part of the path as the error
    travels up (see :func:`config_key`), so the innermost code only names its own key.

    Example:
        >>> str(ConfigError("'SDG' is not registered", key='type').under('optimizer'))
        "optimizer.type: 'SDG' is not registered"
    """

    def __init__(self, problem: str, key: str | None = None) -> None:
        self.problem = problem
        self.key = key
        super().__init__(self._message())

    def _message(self) -> str:
        return f"{self.key}: {self.problem}" if self.key else self.problem

    def under(self, parent: str) -> "ConfigError":
        """Prefix the key path with ``parent`` (in place) and return the error."""
        self.key = f"{parent}.{self.key}" if self.key else parent
        self.args = (self._message(),)
        return self

    def __str__(self) -> str:
        return self._message()


def one_line_error(error: BaseException) -> str | None:
    """What a command-line tool prints, before exiting with status 2, for an error the user
    fixes by changing an input: a config error, a checkpoint that is damaged or refused as
    unsafe, or a work dir that another training run holds. None for anything else, which
    should keep its traceback.

    The checkpoint error classes are looked up in ``sys.modules``: importing them here would
    import torch before a config error could be reported.
    """
    if isinstance(error, ConfigError):
        return f"config error: {error}"
    module = sys.modules.get("minirunner.checkpoint.errors")
    if module is None:
        return None
    if isinstance(error, (module.CorruptCheckpointError, module.UnsafeCheckpointError)):
        return f"checkpoint error: {error}"
    if isinstance(error, module.WorkDirLockedError):
        return f"error: {error}"
    return None
