"""`BackgroundCalls`: runs a tracker's network calls on a thread of their own.

Training must never wait for a tracker. Every call a tracker backend makes (create a run, log
a batch of metrics, upload a file) is put on a bounded queue and run by one worker thread, in
order. A call that fails (the server went away) is kept and tried again when the next call
arrives, that is at the next log line, so a short outage loses nothing; the first failure of
an outage is reported once as a warning, and the recovery once as an info line.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Callable

from minirunner.logging import print_log

_STOP = object()


class _Marker:
    """Put on the queue by :meth:`BackgroundCalls.wait`: set when the worker reaches it."""

    def __init__(self) -> None:
        self.reached = threading.Event()


class BackgroundCalls:
    """One worker thread that runs submitted calls in order, retrying failed ones later.

    Args:
        name: the tracker's name, used in warnings and as the thread's name.
        max_pending: at most this many calls wait (queued or kept for a retry); past that the
            oldest is dropped, with a warning, so memory stays bounded during a long outage.
        is_permanent: says whether a failure would fail again however often it is tried (the
            tracker refused a value); such a call is reported (once per message) and dropped
            rather than kept, so it cannot hold back the calls behind it.

    Example:
        >>> calls = BackgroundCalls('demo')
        >>> calls.submit(lambda: None)
        >>> calls.close(timeout=5)
        True
    """

    def __init__(
        self, name: str, max_pending: int = 1000, is_permanent: Callable[[Exception], bool] | None = None
    ) -> None:
        self.name = name
        self.max_pending = max_pending
        self._is_permanent = is_permanent or (lambda error: False)
        self._refusals: set[str] = set()
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._failed: collections.deque[Callable[[], None]] = collections.deque()
        self._failing = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._work, name=f"minirunner-{name}", daemon=True)
        self._thread.start()

    def submit(self, call: Callable[[], None]) -> None:
        """Queue ``call``; never blocks (a full queue drops the oldest waiting call)."""
        while True:
            try:
                self._queue.put_nowait(call)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    continue
                self._drop(1)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every queued call to be run (or kept for a
        retry); True when the queue is empty."""
        marker = _Marker()
        started = time.monotonic()
        try:
            self._queue.put(marker, timeout=timeout)  # blocks rather than drop a call for it
        except queue.Full:
            return False
        return marker.reached.wait(max(0.0, timeout - (time.monotonic() - started)))

    def close(self, timeout: float) -> bool:
        """Try the calls still waiting, for at most ``timeout`` seconds, then stop the thread.

        Returns True when every call went through; otherwise warns how many did not.
        """
        started = time.monotonic()
        try:
            self._queue.put(_STOP, timeout=timeout)  # blocks rather than drop a call for it
        except queue.Full:
            pass
        self._thread.join(max(0.0, timeout - (time.monotonic() - started)))
        undelivered = self._queue.qsize() + len(self._failed)
        if self._thread.is_alive() or undelivered:
            print_log(
                f"{self.name}: {undelivered} call(s) could not be delivered when the run ended "
                f"(waited up to {timeout:.0f} s); vis_data/scalars.json has every scalar",
                logger="current",
                level=logging.WARNING,
            )
            return False
        return True

    # ------------------------------------------------------------------ the worker thread
    def _work(self) -> None:
        while True:
            call = self._queue.get()
            # Calls kept from an outage go first, in order; stop at the first that fails
            # again, so a dead server costs one timeout per log line, not one per call.
            while self._failed:
                if not self._run(self._failed[0]):
                    break
                self._failed.popleft()
            if call is _STOP:
                return
            if isinstance(call, _Marker):
                call.reached.set()
                continue
            if self._failed or not self._run(call):
                self._failed.append(call)
                if len(self._failed) > self.max_pending:
                    self._failed.popleft()
                    self._drop(1)

    def _run(self, call: Callable[[], None]) -> bool:
        started = time.monotonic()
        try:
            call()
        except Exception as error:  # noqa: BLE001 - a tracker's failure must not stop training
            if self._is_permanent(error):
                message = f"{type(error).__name__}: {_first_line(error)}"
                if message not in self._refusals:
                    self._refusals.add(message)
                    print_log(f"{self.name}: a call was refused and is dropped ({message})",
                              logger="current", level=logging.WARNING)
                return True
            if not self._failing:
                self._failing = True
                print_log(
                    f"{self.name}: a call failed after {time.monotonic() - started:.1f} s "
                    f"({type(error).__name__}: {_first_line(error)}); training goes on, the call is "
                    "tried again at the next log line and vis_data/scalars.json keeps every scalar",
                    logger="current",
                    level=logging.WARNING,
                )
            return False
        if self._failing:
            self._failing = False
            print_log(f"{self.name}: reachable again; the calls kept meanwhile were sent", logger="current")
        return True

    def _drop(self, count: int) -> None:
        if self.dropped == 0:
            print_log(
                f"{self.name}: more than {self.max_pending} calls waiting; dropping the oldest "
                "(vis_data/scalars.json keeps every scalar)",
                logger="current",
                level=logging.WARNING,
            )
        self.dropped += count


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
