"""print_log and the `minirunner` logger: format, targets, levels, log files, colours, ranks."""

from __future__ import annotations

import io
import logging
import re
import sys
import uuid

import pytest

import minirunner.logging.logger as logger_module
from minirunner.logging import (
    LOGGER_NAME,
    MMLogger,
    add_log_file,
    get_current_logger,
    get_logger,
    print_log,
    set_current_logger,
)

LINE = r"\d\d/\d\d \d\d:\d\d:\d\d - {name} - {level} - {msg}"


def line_re(msg: str, level: str = "INFO", name: str = "minirunner") -> str:
    return "^" + LINE.format(name=re.escape(name), level=level, msg=re.escape(msg)) + "$"


@pytest.fixture(autouse=True)
def current_logger_is_minirunner():
    set_current_logger(LOGGER_NAME)
    yield
    set_current_logger(LOGGER_NAME)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_current_logger_line_format(capsys):
    print_log("msg", logger="current")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.match(line_re("msg"), lines[0]), lines[0]


def test_logger_is_named_minirunner_and_does_not_propagate():
    logger = get_logger()
    assert logger.name == "minirunner"
    assert logger.propagate is False
    # The current logger is an MMLogger that hands its records to this one.
    assert isinstance(get_current_logger(), MMLogger) and get_current_logger().parent is logger
    assert get_logger() is logger
    # A second get_logger does not add a second console handler (no duplicated lines).
    consoles = [h for h in logger.handlers if isinstance(h, logger_module._ConsoleHandler)]
    assert len(consoles) == 1


def test_no_duplicate_lines(capsys):
    get_logger()
    get_logger()
    print_log("once", logger="current")
    assert capsys.readouterr().out.count("once") == 1


def test_silent_prints_nothing(capsys):
    print_log("hidden", logger="silent")
    print_log("hidden", logger="silent", level=logging.ERROR)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_none_prints_plainly(capsys):
    print_log("plain message")
    print_log({"a": 1}, logger=None)
    assert capsys.readouterr().out == "plain message\n{'a': 1}\n"


def test_logger_object():
    logger = logging.getLogger(f"test_obj_{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    print_log("to object", logger=logger, level=logging.WARNING)
    print_log("debug by name", logger=logger, level="debug")
    assert [(r.getMessage(), r.levelname) for r in records] == [("to object", "WARNING"), ("debug by name", "DEBUG")]


def test_logger_by_name(capsys):
    name = f"myrun_{uuid.uuid4().hex[:8]}"
    get_logger(name)
    print_log("hello", logger=name)
    assert re.match(line_re("hello", name=name), capsys.readouterr().out.strip())


def test_unknown_logger_name_errors():
    with pytest.raises(ValueError) as info:
        print_log("x", logger="no_such_logger_xyz")
    message = str(info.value)
    assert "no logger named 'no_such_logger_xyz'" in message
    assert "'current'" in message and "'silent'" in message


def test_bad_logger_type_errors():
    with pytest.raises(TypeError, match="logger must be None, 'current', 'silent'"):
        print_log("x", logger=3)  # type: ignore[arg-type]


def test_levels_by_name_and_number(capsys):
    print_log("warn", logger="current", level="WARNING")
    print_log("err", logger="current", level="error")
    print_log("num", logger="current", level=logging.CRITICAL)
    print_log("debug is below INFO", logger="current", level="DEBUG")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert re.match(line_re("warn", "WARNING"), lines[0])
    assert re.match(line_re("err", "ERROR"), lines[1])
    assert re.match(line_re("num", "CRITICAL"), lines[2])


def test_unknown_level_name_errors():
    with pytest.raises(ValueError, match=r"unknown log level 'LOUD'.*DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        print_log("x", logger="current", level="LOUD")


def test_set_current_logger(capsys):
    name = f"exp_{uuid.uuid4().hex[:8]}"
    run_logger = get_logger(name)
    set_current_logger(run_logger)
    current = get_current_logger()
    assert isinstance(current, MMLogger) and current.parent is run_logger and current.instance_name == name
    print_log("from run", logger="current")
    assert re.match(line_re("from run", name=name), capsys.readouterr().out.strip())


def test_child_logger_shares_the_console_handler(capsys):
    get_logger("minirunner.sub")
    print_log("child line", logger="minirunner.sub")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert re.match(line_re("child line", name="minirunner.sub"), lines[0])


def test_add_log_file_writes_the_same_lines(tmp_path, capsys):
    path = tmp_path / "run.log"
    handler = add_log_file(str(path))
    try:
        print_log("into the file", logger="current")
        print_log("a warning", logger="current", level="WARNING")
    finally:
        get_current_logger().removeHandler(handler)
        handler.close()
    print_log("after removal", logger="current")
    console = capsys.readouterr().out.splitlines()
    written = path.read_text(encoding="utf-8").splitlines()
    assert len(written) == 2
    assert re.match(line_re("into the file"), written[0])
    assert re.match(line_re("a warning", "WARNING"), written[1])
    assert written == console[:2]  # same text as the console (when it is not a terminal)
    assert "after removal" not in path.read_text(encoding="utf-8")


def test_add_log_file_appends_and_has_its_own_level(tmp_path):
    path = tmp_path / "warn.log"
    path.write_text("existing\n", encoding="utf-8")
    logger = get_logger()
    handler = add_log_file(str(path), logger=logger, log_level="WARNING")
    try:
        print_log("info is filtered", logger=logger)
        print_log("warning kept", logger=logger, level="WARNING")
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "existing"
    assert len(lines) == 2
    assert re.match(line_re("warning kept", "WARNING"), lines[1])


def test_terminal_colours_the_level(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    print_log("coloured", logger="current")
    print_log("warned", logger="current", level="WARNING")
    out = terminal.getvalue()
    assert "\x1b[" in out
    lines = out.splitlines()
    assert len(lines) == 2
    # The level name sits inside colour codes; the rest of the line is unchanged.
    assert re.search(r"\x1b\[[0-9;]*mINFO\x1b\[0m", lines[0]), repr(lines[0])
    assert re.search(r"\x1b\[[0-9;]*mWARNING\x1b\[0m", lines[1]), repr(lines[1])
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    assert re.match(line_re("coloured"), plain[0]), plain[0]
    assert re.match(line_re("warned", "WARNING"), plain[1]), plain[1]


def test_fresh_handler_on_terminal_and_plain_stream(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    logger = logging.getLogger(f"colour_{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    terminal, plain = FakeTerminal(), io.StringIO()
    for stream in (terminal, plain):
        handler = logger_module._ConsoleHandler(stream)
        handler.setFormatter(logging.Formatter(logger_module._FORMAT, logger_module._DATE_FORMAT))
        logger.addHandler(handler)
    logger.error("both")
    assert "\x1b[" in terminal.getvalue()
    assert "\x1b[" not in plain.getvalue()
    assert re.match(line_re("both", "ERROR", name=logger.name), plain.getvalue().strip())


def test_other_ranks_drop_info(monkeypatch, capsys):
    monkeypatch.setattr(logger_module, "get_rank", lambda: 1)
    print_log("info from rank 1", logger="current")
    print_log("warning from rank 1", logger="current", level="WARNING")
    print_log("error from rank 1", logger="current", level="ERROR")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.match(line_re("warning from rank 1", "WARNING"), lines[0])
    assert re.match(line_re("error from rank 1", "ERROR"), lines[1])


def test_print_log_does_not_reach_the_root_logger():
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        print_log("kept inside", logger="current")
    finally:
        root.removeHandler(handler)
    assert records == []


def test_looking_up_the_logger_keeps_the_level_a_run_chose(capsys):
    from minirunner.logging import get_logger, print_log

    logger = get_logger("minirunner", log_level="WARNING")
    try:
        print_log("hidden", logger="current")  # looks the logger up again
        assert get_logger().level == logging.WARNING
        assert "hidden" not in capsys.readouterr().out
    finally:
        logger.setLevel(logging.INFO)
