"""`HistoryBuffer`: the history of one logged scalar."""

from __future__ import annotations

from typing import Any, Callable

import torch


class HistoryBuffer:
    """The values (and counts) logged under one key, with windowed statistics.

    Values may be tensors: they are stored as given and turned into floats only when a
    statistic is read, so that logging a loss every iteration does not wait for the GPU.

    ``count`` says how many samples a value stands for. As in the reference engine, a mean
    divides the sum of the values in the window by the sum of their counts, so a value
    logged with ``count=n`` is read as the total of ``n`` samples; with the default
    ``count=1`` this is the plain mean.

    Example:
        >>> buffer = HistoryBuffer()
        >>> for value in (1.0, 2.0, 6.0):
        ...     buffer.update(value)
        >>> buffer.mean(2), buffer.current(), buffer.min(), buffer.max()
        (4.0, 6.0, 1.0, 6.0)
    """

    # Statistics callable through :meth:`statistics` by name; see :meth:`register_statistics`.
    _statistics_methods: dict[str, Callable[..., Any]] = {}

    def __init__(self, max_length: int = 1_000_000) -> None:
        self.max_length = max_length
        self._trim_at = max_length + max_length // 4  # trim in batches, not on every update
        self._values: list[float] = []
        self._counts: list[int] = []
        self._pending: list[torch.Tensor] = []  # tensors not yet converted, oldest first

    def update(self, value: Any, count: int = 1) -> None:
        """Append ``value`` (a number or a tensor); ``count``: how many samples it stands for."""
        if isinstance(value, torch.Tensor):
            self._pending.append(value.detach() if value.requires_grad else value)
        else:
            if self._pending:
                self._flush()
            self._values.append(float(value))
        self._counts.append(count)
        if len(self._counts) > self._trim_at:
            self._flush()
            del self._values[: -self.max_length]
            del self._counts[: -self.max_length]

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

    @property
    def data(self) -> tuple[list[float], list[int]]:
        """All values and counts, oldest first."""
        self._flush()
        return self._values, self._counts

    def __len__(self) -> int:
        return len(self._counts)

    def _window(self, window: int | None) -> list[float]:
        values = self.data[0]
        if not values:
            raise ValueError("no value has been logged under this key yet")
        return values if window is None else values[-window:]

    def mean(self, window: int | None = None) -> float:
        """Sum of the last ``window`` values over the sum of their counts (all when None)."""
        values = self._window(window)
        counts = self._counts if window is None else self._counts[-window:]
        return sum(values) / sum(counts)

    def current(self) -> float:
        """The newest value."""
        return self._window(1)[0]

    def min(self, window: int | None = None) -> float:
        """The smallest of the last ``window`` values."""
        return min(self._window(window))

    def max(self, window: int | None = None) -> float:
        """The largest of the last ``window`` values."""
        return max(self._window(window))

    @classmethod
    def register_statistics(cls, method: Callable[..., Any]) -> Callable[..., Any]:
        """Make ``method(buffer, window_size)`` callable as ``statistics(method.__name__, ...)``.

        Example:
            >>> @HistoryBuffer.register_statistics
            ... def spread(buffer, window_size=None):
            ...     return buffer.max(window_size) - buffer.min(window_size)
        """
        name = method.__name__
        if name in ("mean", "min", "max", "current") or name in cls._statistics_methods:
            raise ValueError(f"a statistic named {name!r} is already registered")
        cls._statistics_methods[name] = method
        return method

    def statistics(self, method_name: str, *args: Any, **kwargs: Any) -> float:
        """Call a statistic by name: 'mean', 'current', 'min', 'max' or a registered one.

        ``window_size`` (the reference's keyword) or ``window`` selects the window;
        ``current`` ignores it.
        """
        window = kwargs.pop("window_size", kwargs.pop("window", args[0] if args else None))
        if method_name == "current":
            return self.current()
        if method_name in ("mean", "min", "max"):
            return getattr(self, method_name)(window)
        method = self._statistics_methods.get(method_name)
        if method is None:
            known = ["mean", "min", "max", "current", *self._statistics_methods]
            raise ValueError(f"unknown statistic {method_name!r}; use one of {known}")
        return method(self, window)

    def state_dict(self) -> dict:
        """Plain lists of floats and ints, loadable with ``torch.load(weights_only=True)``."""
        values, counts = self.data
        return {"values": list(values), "counts": list(counts), "max_length": self.max_length}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.max_length = int(state["max_length"])
        self._trim_at = self.max_length + self.max_length // 4
        self._values = [float(v) for v in state["values"]]
        self._counts = [int(c) for c in state["counts"]]
        self._pending = []
