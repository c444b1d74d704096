"""BackgroundCalls: tracker calls run in order on a worker thread, failed ones are tried again
at the next call, and nothing waits longer than the caller allows."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from minirunner.visualization import background
from minirunner.visualization.background import BackgroundCalls


class _Flaky:
    """A call target that fails while ``down`` is set and records what it delivered."""

    def __init__(self) -> None:
        self.down = False
        self.delivered: list[int] = []

    def call(self, value: int):
        def deliver() -> None:
            if self.down:
                raise ConnectionError("connection refused")
            self.delivered.append(value)
        return deliver


@pytest.fixture
def messages(monkeypatch):
    """What BackgroundCalls reports, as (level, text)."""
    seen: list[tuple[int, str]] = []
    monkeypatch.setattr(background, "print_log", lambda msg, logger=None, level=logging.INFO: seen.append((level, msg)))
    return seen


def test_calls_run_in_order_off_the_calling_thread():
    calls = BackgroundCalls("demo")
    threads, order = [], []
    for value in range(20):
        calls.submit(lambda value=value: (order.append(value), threads.append(threading.get_ident())))
    assert calls.close(timeout=10)
    assert order == list(range(20))
    assert threading.get_ident() not in threads


def test_failed_calls_are_kept_and_sent_at_the_next_call(messages):
    target, calls = _Flaky(), BackgroundCalls("demo")
    target.down = True
    for value in (1, 2, 3):
        calls.submit(target.call(value))
    assert calls.wait(timeout=10)
    assert target.delivered == []
    failures = [text for level, text in messages if "failed" in text and level == logging.WARNING]
    assert len(failures) == 1  # once per outage, not once per call
    assert "ConnectionError: connection refused" in failures[0]
    target.down = False
    calls.submit(target.call(4))  # the next log line: the kept calls go first, in order
    assert calls.close(timeout=10)
    assert target.delivered == [1, 2, 3, 4]
    assert any("reachable again" in text for _, text in messages)


def test_close_gives_up_after_its_timeout_on_a_hanging_call(messages):
    release = threading.Event()
    calls = BackgroundCalls("demo")
    calls.submit(lambda: release.wait(30))  # a server that accepts and never answers
    calls.submit(lambda: None)
    started = time.monotonic()
    try:
        assert calls.close(timeout=0.5) is False
        assert time.monotonic() - started < 5
        assert any("could not be delivered" in text for _, text in messages)
    finally:
        release.set()


def test_submit_never_blocks_and_drops_the_oldest_when_full(messages):
    release = threading.Event()
    calls = BackgroundCalls("demo", max_pending=5)
    delivered = []
    calls.submit(lambda: release.wait(30))
    time.sleep(0.2)  # the worker is now inside the blocking call
    started = time.monotonic()
    for value in range(12):
        calls.submit(lambda value=value: delivered.append(value))
    assert time.monotonic() - started < 1
    release.set()
    assert calls.close(timeout=10)
    assert delivered == list(range(7, 12))  # the newest five
    assert calls.dropped == 7
    assert sum("dropping the oldest" in text for _, text in messages) == 1


def test_a_refused_call_is_dropped_and_does_not_hold_back_the_others(messages):
    delivered = []

    def refused():
        raise ValueError("metric name 'a b?' is not valid")

    calls = BackgroundCalls("demo", is_permanent=lambda error: isinstance(error, ValueError))
    for value in range(3):
        calls.submit(refused)
        calls.submit(lambda value=value: delivered.append(value))
    assert calls.close(timeout=10)
    assert delivered == [0, 1, 2]
    refusals = [text for _, text in messages if "refused and is dropped" in text]
    assert refusals == ["demo: a call was refused and is dropped (ValueError: metric name 'a b?' is not valid)"]
