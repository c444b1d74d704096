"""Progress bars that share the terminal with log lines.

A tqdm bar redraws its line with carriage returns; a log line printed in the middle of that
line would be cut or overwritten. While any bar made by :func:`progress_bar` is open, the
``minirunner`` console handler writes inside tqdm's ``external_write_mode``: tqdm clears its
bars, the log line is printed whole on its own line, and the bars are redrawn below it.
When no bar is open the console handler pays one integer test per line, nothing more.

Example:
    >>> bar = progress_bar(total=100, desc='train')  # doctest: +SKIP
    >>> for _ in range(100):  # doctest: +SKIP
    ...     bar.update(1)
    >>> bar.close()  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any

# How many bars are open now. The console handler reads it before each write.
_open_bars = 0
_bar_class: Any = None


def bars_open() -> int:
    """How many progress bars are open."""
    return _open_bars


def _make_bar_class() -> Any:
    # tqdm is imported only when a bar is wanted: a run without a terminal never loads it.
    from tqdm import tqdm

    class _TrackedBar(tqdm):
        """A tqdm bar that the console handler knows about while it is open."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            global _open_bars
            super().__init__(*args, **kwargs)
            self._tracked = True
            _open_bars += 1

        def close(self) -> None:
            global _open_bars
            if getattr(self, "_tracked", False):
                self._tracked = False
                _open_bars -= 1
            super().close()

    return _TrackedBar


def progress_bar(total: int, desc: str = "", initial: int = 0, file: Any = None, leave: bool = False) -> Any:
    """Open a tqdm bar on ``file`` (default: ``sys.stdout``, where log lines go).

    Log lines printed through the ``minirunner`` logger while it is open appear above it.
    Call ``update(n)`` to advance it and ``close()`` when done; ``leave=False`` (the default)
    erases it on close, since the log lines already hold what it showed.
    """
    global _bar_class
    if _bar_class is None:
        _bar_class = _make_bar_class()
    return _bar_class(
        total=total,
        desc=desc,
        initial=initial,
        file=file if file is not None else sys.stdout,
        leave=leave,
        dynamic_ncols=True,
    )


def external_write(stream: Any) -> Any:
    """A context manager under which writing to ``stream`` does not break open bars."""
    from tqdm import tqdm

    return tqdm.external_write_mode(file=stream)


def close_all_bars() -> None:
    """Close every open bar (e.g. before printing a traceback after a failure)."""
    if _bar_class is None:
        return
    for bar in list(getattr(_bar_class, "_instances", ())):
        if getattr(bar, "_tracked", False):
            bar.close()
