"""Progress bars and log lines on one terminal: lines print whole, above the bar."""

from __future__ import annotations

import io
import re
import sys

import pytest

from minirunner.logging import LOGGER_NAME, print_log, progress_bar, set_current_logger
from minirunner.logging import progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LOG_LINE = re.compile(r"^\d\d/\d\d \d\d:\d\d:\d\d - minirunner - INFO - (.*)$")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def segments(text: str) -> list[str]:
    """What a terminal would show, line piece by line piece: split at newlines and carriage
    returns, colour codes removed, blank pieces dropped."""
    pieces = []
    for line in ANSI.sub("", text).split("\n"):
        pieces += [piece.rstrip() for piece in line.split("\r") if piece.strip()]
    return pieces


@pytest.fixture
def terminal(monkeypatch):
    """A fake terminal; the test itself must put it in sys.stdout (pytest's capture resets
    sys.stdout between fixture setup and the test)."""
    set_current_logger(LOGGER_NAME)
    monkeypatch.setenv("TERM", "xterm-256color")
    yield FakeTerminal()
    progress.close_all_bars()


def test_log_lines_print_above_an_open_bar(terminal, monkeypatch):
    monkeypatch.setattr(sys, "stdout", terminal)
    bar = progress_bar(total=10, desc="Epoch 1/1")
    try:
        bar.update(3)
        assert progress.bars_open() == 1
        print_log("first message, long enough to be cut by a redrawn bar", logger="current")
        bar.update(2)
        print_log("second message", logger="current")
    finally:
        bar.close()
    assert progress.bars_open() == 0
    pieces = segments(terminal.getvalue())
    messages = [m.group(1) for piece in pieces if (m := LOG_LINE.match(piece))]
    # Each log line is a piece of its own, intact from the timestamp to the end.
    assert messages == ["first message, long enough to be cut by a redrawn bar", "second message"]
    # The bar was drawn, and never shares a piece with a log line.
    bar_pieces = [p for p in pieces if p.startswith("Epoch 1/1:")]
    assert any("3/10" in p for p in bar_pieces)
    assert not any("minirunner - INFO" in p for p in bar_pieces)


def test_plain_stream_writes_directly_when_no_bar(monkeypatch):
    set_current_logger(LOGGER_NAME)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    assert progress.bars_open() == 0
    print_log("plain", logger="current")
    assert re.fullmatch(r"\d\d/\d\d \d\d:\d\d:\d\d - minirunner - INFO - plain\n", stream.getvalue())


def test_closing_twice_counts_once(terminal, monkeypatch):
    monkeypatch.setattr(sys, "stdout", terminal)
    bar = progress_bar(total=2)
    bar.close()
    bar.close()
    assert progress.bars_open() == 0


def test_close_all_bars(terminal, monkeypatch):
    monkeypatch.setattr(sys, "stdout", terminal)
    bars = [progress_bar(total=5, desc="a"), progress_bar(total=5, desc="b")]
    assert progress.bars_open() == 2
    progress.close_all_bars()
    assert progress.bars_open() == 0
    assert not any(bar._tracked for bar in bars)
