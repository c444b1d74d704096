"""install_rich_traceback: plain tracebacks off a terminal, rich on one, a copy in the log file."""

from __future__ import annotations

import io
import sys

import pytest

from minirunner.logging import LOGGER_NAME, add_log_file, get_logger, install_rich_traceback, set_current_logger
from minirunner.logging import progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _raise_and_get_exc_info():
    def divide(x):
        return 1 / x

    try:
        divide(0)
    except ZeroDivisionError:
        return sys.exc_info()
    raise AssertionError("unreachable")


@pytest.fixture
def restore_excepthook(monkeypatch):
    # monkeypatch puts the original hook back after the test, whatever install did.
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    set_current_logger(LOGGER_NAME)


def test_off_a_terminal_the_previous_hook_prints_and_the_log_file_gets_a_copy(restore_excepthook, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: seen.append(info))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert install_rich_traceback() is False
    logger = get_logger()
    handler = add_log_file(str(tmp_path / "run.log"), logger)
    try:
        info = _raise_and_get_exc_info()
        sys.excepthook(*info)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert seen == [info]  # Python's own format, unchanged, for CI logs
    text = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "ERROR - the run stopped with an uncaught exception:" in text
    assert "Traceback (most recent call last):" in text
    assert "return 1 / x" in text and text.rstrip().endswith("ZeroDivisionError: division by zero")


def test_on_a_terminal_rich_prints_it(restore_excepthook, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("TERM", "xterm-256color")
    previous = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: previous.append(info))
    assert install_rich_traceback() is True
    sys.excepthook(*_raise_and_get_exc_info())
    out = terminal.getvalue()
    assert previous == []
    assert "Traceback" in out and "ZeroDivisionError" in out and "division by zero" in out
    assert "╭" in out  # rich's framed rendering, not Python's plain text


def test_installing_twice_wraps_once(restore_excepthook, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    install_rich_traceback()
    hook = sys.excepthook
    install_rich_traceback()
    assert sys.excepthook is hook


def test_open_bars_are_closed_first(restore_excepthook, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(sys, "excepthook", lambda *info: None)
    install_rich_traceback()
    bar = progress.progress_bar(total=3, file=io.StringIO())
    assert progress.bars_open() == 1
    sys.excepthook(*_raise_and_get_exc_info())
    assert progress.bars_open() == 0 and bar._tracked is False
