"""`HistoryBuffer`: the history of one logged scalar."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import torch

from .errors import LoggingUsageError, UnknownStatisticError

_BUILT_IN_STATISTICS = ("mean", "min", "max", "current")


class HistoryBuffer:
    """The values (and counts) logged under one key, with windowed statistics.

    Values may be tensors: they are stored as given and turned into floats only when a
    statistic is read, so that logging a loss every iteration does not wait for the GPU.

    ``count`` says how many samples a value stands for. As in the reference engine, a mean
    divides the sum of the values in the window by the sum of their counts, so a value
    logged with ``count=n`` is read as the total of ``n`` samples; with the default
    ``count=1`` this is the plain mean.

    Unlike the reference engine, which keeps NumPy arrays, :attr:`data` holds Python lists
    and the statistics return Python floats: NumPy is optional here.

    Args:
        log_history: values to start with, oldest first.
        count_history: their counts (as many as values).
        max_length: how many of the newest values are kept.

    Example:
        >>> buffer = HistoryBuffer()
        >>> for value in (1.0, 2.0, 6.0):
        ...     buffer.update(value)
        >>> buffer.mean(2), buffer.current(), buffer.min(), buffer.max()
        (4.0, 6.0, 1.0, 6.0)
    """

    # Statistics callable through :meth:`statistics` by name; see :meth:`register_statistics`.
    _statistics_methods: dict[str, Callable[..., Any]] = {}

    def __init__(
        self, log_history: Sequence = (), count_history: Sequence = (), max_length: int = 1_000_000
    ) -> None:
        if len(log_history) != len(count_history):
            raise LoggingUsageError(
                f"HistoryBuffer: log_history has {len(log_history)} values but count_history has "
                f"{len(count_history)} counts; give one count per value"
            )
        self.max_length = max_length
        self._trim_at = max_length + max_length // 4  # trim in batches, not on every update
        self._values: list[float] = []
        self._counts: list[int] = []
        self._pending: list[torch.Tensor] = []  # tensors not yet converted, oldest first
        if len(log_history) > max_length:
            warnings.warn(
                f"HistoryBuffer: {len(log_history)} values exceed max_length={max_length}; "
                f"only the newest {max_length} are kept",
                stacklevel=2,
            )
            log_history, count_history = log_history[-max_length:], count_history[-max_length:]
        for value, count in zip(log_history, count_history):
            self.update(value, count)

    def update(self, log_val: Any, count: int = 1) -> None:
        """Append ``log_val`` (a number or a one-element tensor); ``count``: how many samples
        it stands for. Only the newest ``max_length`` values are kept."""
        # MessageHub.update_scalar writes out the float and plain-tensor cases with count 1:
        # keep the two in step.
        # Exact types first: a float (lr, times) or a plain tensor (a loss) is what arrives
        # on every iteration, and testing the type itself is cheaper than isinstance.
        kind = type(log_val)
        if kind is float and not self._pending:
            self._values.append(log_val)
        elif kind is torch.Tensor or isinstance(log_val, torch.Tensor):
            self._pending.append(log_val.detach() if log_val.requires_grad else log_val)
        else:
            if self._pending:
                self._flush()
            try:
                self._values.append(float(log_val))
            except (TypeError, ValueError):
                raise TypeError(
                    f"HistoryBuffer.update: log_val must be a number or a one-element tensor, "
                    f"got {type(log_val).__name__} {log_val!r}"
                ) from None
        self._counts.append(count)
        if len(self._counts) > self._trim_at:
            self._trim()

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        # One stack and one transfer for every pending value instead of one per value;
        # the usual ones (0-d losses on one device) need no reshaping, and stack promotes
        # mixed dtypes. Each value must hold exactly one number.
        try:
            stacked = torch.stack(pending)
        except RuntimeError:  # different shapes ((), (1,)) or devices
            stacked = torch.stack([value.reshape(()).cpu() for value in pending])
        self._values.extend(map(float, stacked.reshape(len(pending)).tolist()))
        pending.clear()

    def _trim(self) -> None:
        self._flush()
        del self._values[: -self.max_length]
        del self._counts[: -self.max_length]

    @property
    def data(self) -> tuple[list[float], list[int]]:
        """All kept values and their counts, oldest first (lists, not NumPy arrays)."""
        self._flush()
        if len(self._counts) > self.max_length:
            self._trim()
        return self._values, self._counts

    def __len__(self) -> int:
        return min(len(self._counts), self.max_length)

    def _window(self, window_size: int | None) -> list[float]:
        values = self.data[0]
        if not values:
            raise ValueError("no value has been logged under this key yet")
        return values if window_size is None else values[-window_size:]

    def mean(self, window_size: int | None = None) -> float:
        """Sum of the last ``window_size`` values over the sum of their counts (all when None)."""
        values = self._window(window_size)
        counts = self._counts if window_size is None else self._counts[-window_size:]
        return sum(values) / sum(counts)

    def current(self) -> float:
        """The newest value."""
        return self._window(1)[0]

    def min(self, window_size: int | None = None) -> float:
        """The smallest of the last ``window_size`` values (all when None)."""
        return min(self._window(window_size))

    def max(self, window_size: int | None = None) -> float:
        """The largest of the last ``window_size`` values (all when None)."""
        return max(self._window(window_size))

    @classmethod
    def register_statistics(cls, method: Callable[..., Any]) -> Callable[..., Any]:
        """Make ``method(buffer, *args, **kwargs)`` callable as
        ``buffer.statistics(method.__name__, *args, **kwargs)``; returns ``method`` (so this
        works as a decorator). A name can be registered once.

        Example:
            >>> @HistoryBuffer.register_statistics
            ... def spread(buffer, window_size=None):
            ...     return buffer.max(window_size) - buffer.min(window_size)
        """
        name = method.__name__
        if name in _BUILT_IN_STATISTICS or name in cls._statistics_methods:
            raise LoggingUsageError(f"a statistic named {name!r} is already registered")
        cls._statistics_methods[name] = method
        return method

    def statistics(self, method_name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a statistic by name: 'mean', 'min', 'max' (which take ``window_size``),
        'current' (which ignores any window, so callers can pass one for every name), or a
        registered one, which gets the arguments as given.

        Raises:
            KeyError: no statistic has that name (the error is also a ``ValueError``).
        """
        if method_name == "current":
            return self.current()
        if method_name in ("mean", "min", "max"):
            return getattr(self, method_name)(*args, **kwargs)
        method = self._statistics_methods.get(method_name)
        if method is None:
            known = [*_BUILT_IN_STATISTICS, *self._statistics_methods]
            raise UnknownStatisticError(
                f"unknown statistic {method_name!r}; use one of {known} or register one with "
                "HistoryBuffer.register_statistics"
            )
        return method(self, *args, **kwargs)

    def state_dict(self) -> dict:
        """Plain lists of floats and ints, loadable with ``torch.load(weights_only=True)``."""
        values, counts = self.data
        return {"values": list(values), "counts": list(counts), "max_length": self.max_length}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.max_length = int(state["max_length"])
        self._trim_at = self.max_length + self.max_length // 4
        self._values = [float(v) for v in state["values"]]
        self._counts = [_count(c) for c in state["counts"]]
        self._pending = []


def _count(count: Any) -> int | float:
    # Counts are ints in practice; a converted reference checkpoint stores them as floats
    # (its NumPy arrays are float arrays), and a fractional count stays as it is.
    count = float(count)
    return int(count) if count.is_integer() else count
