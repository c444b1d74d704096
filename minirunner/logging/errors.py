"""Errors of the logging package that keep the exception classes of the reference engine."""

from __future__ import annotations


class LoggingUsageError(ValueError, AssertionError):
    """A misuse the reference engine reports with an ``assert`` (so user code written for it
    catches ``AssertionError``); it is also a ``ValueError``, as our other usage errors are,
    and unlike a bare ``assert`` it is raised under ``python -O`` too."""


class UnknownStatisticError(KeyError, ValueError):
    """``HistoryBuffer.statistics`` got a name that is not registered: a ``KeyError`` as in
    the reference engine, and a ``ValueError`` as before."""

    def __str__(self) -> str:
        # KeyError quotes its message (it is usually a bare key); ours is a sentence.
        return str(self.args[0]) if self.args else ""
