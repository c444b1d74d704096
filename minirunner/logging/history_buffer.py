"""`HistoryBuffer`: the history of one logged scalar."""

from __future__ import annotations

from typing import Any

import torch


class HistoryBuffer:
    """The values (and counts) logged under one key, with windowed statistics.

    Values may be tensors: they are stored as given and turned into floats only when a
    statistic is read, so that logging a loss every iteration does not wait for the GPU.

    Example:
        >>> buffer = HistoryBuffer()
        >>> for value in (1.0, 2.0, 6.0):
        ...     buffer.update(value)
        >>> buffer.mean(2), buffer.current(), buffer.min(), buffer.max()
        (4.0, 6.0, 1.0, 6.0)
    """

    def __init__(self, max_length: int = 1_000_000) -> None:
        self.max_length = max_length
        self._trim_at = max_length + max_length // 4  # trim in batches, not on every update
        self._values: list[float] = []
        self._counts: list[int] = []
        self._pending: list[torch.Tensor] = []  # tensors not yet converted, oldest first

    def update(self, value: Any, count: int = 1) -> None:
        """Append ``value``; ``count`` is how many samples it averages (used by weighted means)."""
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
        if not self._pending:
            return
        # One transfer for every pending value instead of one per value.
        stacked = torch.stack([t.float().reshape(()) for t in self._pending]).cpu().tolist()
        self._values.extend(stacked)
        self._pending.clear()

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
        """The mean of the last ``window`` values (all of them when None)."""
        values = self._window(window)
        return sum(values) / len(values)

    def current(self) -> float:
        """The newest value."""
        return self._window(1)[0]

    def min(self, window: int | None = None) -> float:
        """The smallest of the last ``window`` values."""
        return min(self._window(window))

    def max(self, window: int | None = None) -> float:
        """The largest of the last ``window`` values."""
        return max(self._window(window))

    def statistics(self, method: str, window: int | None = None) -> float:
        """Call a statistic by name: 'mean', 'current', 'min' or 'max'."""
        if method == "current":
            return self.current()
        if method not in ("mean", "min", "max"):
            raise ValueError(f"unknown statistic {method!r}; use 'mean', 'current', 'min' or 'max'")
        return getattr(self, method)(window)

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
