"""MMLogger: instances by name, the current one, files, levels, ranks, and one console with the
`minirunner` logger (so hooks that use MMLogger print where the Runner prints)."""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict

import pytest

import minirunner.logging.logger as logger_module
import minirunner.logging.mm_logger as mm_logger_module
from minirunner.logging import (
    LOGGER_NAME,
    MMLogger,
    add_log_file,
    get_current_logger,
    get_logger,
    print_log,
    set_current_logger,
)

LINE = r"^\d\d/\d\d \d\d:\d\d:\d\d - {name} - {level} - {msg}$"


def line_re(msg: str, level: str = "INFO", name: str = "minirunner") -> str:
    return LINE.format(name=re.escape(name), level=level, msg=re.escape(msg))


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def restore_current_logger():
    yield
    set_current_logger(LOGGER_NAME)


def test_is_a_logging_logger_found_by_instance_name():
    name = unique("mm")
    logger = MMLogger.get_instance(name, logger_name="Logger")
    assert isinstance(logger, logging.Logger)
    assert MMLogger.get_instance(name) is logger
    assert logger.instance_name == name and logger.name == "Logger"
    assert logging.getLogger("Logger") is not logger  # not in logging's own table
    assert MMLogger.get_current_instance() is logger
    other = MMLogger.get_instance(unique("mm"))
    assert other.name == "minirunner"  # the default logger_name
    assert MMLogger.get_current_instance() is other
    assert MMLogger.get_instance(name) is logger and MMLogger.get_current_instance() is logger


def test_current_instance_is_made_when_there_is_none(monkeypatch):
    monkeypatch.setattr(MMLogger, "_instance_dict", OrderedDict())
    logger = MMLogger.get_current_instance()
    assert isinstance(logger, MMLogger) and logger.instance_name == "minirunner"
    assert MMLogger.get_current_instance() is logger


def test_lines_go_to_the_console_once(capsys):
    logger = MMLogger.get_instance(unique("mm"))
    logger.info("hello")
    logger.warning("careful")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.match(line_re("hello"), lines[0]), lines[0]
    assert re.match(line_re("careful", "WARNING"), lines[1]), lines[1]


def test_own_logger_name_prints_under_that_name(capsys):
    logger_name = unique("mmdet")
    MMLogger.get_instance(unique("mm"), logger_name=logger_name).info("det line")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and re.match(line_re("det line", name=logger_name), lines[0])


def test_hook_lines_reach_the_runs_console_and_log_file(tmp_path, capsys):
    # What the Runner does: the `minirunner` logger holds the run's file, and is made current.
    run_logger = get_logger(LOGGER_NAME)
    handler = add_log_file(str(tmp_path / "run.log"), run_logger)
    experiment = unique("exp")
    try:
        set_current_logger(run_logger, name=experiment)
        run_logger.info("from the runner")
        MMLogger.get_current_instance().info("from a hook")
        print_log("from print_log", logger="current")
        print_log("by experiment name", logger=experiment)
    finally:
        run_logger.removeHandler(handler)
        handler.close()
    current = MMLogger.get_current_instance()
    assert current.instance_name == experiment and get_current_logger() is current
    console = capsys.readouterr().out.splitlines()
    written = (tmp_path / "run.log").read_text(encoding="utf-8").splitlines()
    messages = ["from the runner", "from a hook", "from print_log", "by experiment name"]
    assert len(console) == len(written) == 4
    for message, shown, logged in zip(messages, console, written):
        assert re.match(line_re(message), shown), shown
        assert shown == logged


def test_log_file_modes(tmp_path):
    path = tmp_path / "sub" / "out.log"
    path.parent.mkdir()
    path.write_text("old line\n", encoding="utf-8")
    writer = MMLogger.get_instance(unique("mm"), log_file=str(path))  # file_mode='w' by default
    writer.info("first")
    assert writer.log_file == str(path)
    appender = MMLogger.get_instance(unique("mm"), log_file=str(path), file_mode="a")
    appender.info("second")
    for logger in (writer, appender):
        for handler in logger.handlers:
            handler.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert re.match(line_re("first"), lines[0]) and re.match(line_re("second"), lines[1])


def test_log_level(capsys, tmp_path):
    debug = MMLogger.get_instance(unique("mm"), log_level="DEBUG", log_file=str(tmp_path / "d.log"))
    debug.debug("a debug line")
    quiet = MMLogger.get_instance(unique("mm"), log_level=logging.WARNING)
    quiet.info("not shown")
    quiet.warning("shown")
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r"^.* - (\w+) - ", r"\1 ", line) for line in lines] == ["DEBUG a debug line", "WARNING shown"]
    assert "a debug line" in (tmp_path / "d.log").read_text(encoding="utf-8")


def test_notset_follows_the_level_a_run_chose(capsys):
    follower = MMLogger.get_instance(unique("mm"), log_level="NOTSET")
    run_logger = get_logger(LOGGER_NAME)
    follower.info("visible at INFO")
    run_logger.setLevel(logging.WARNING)
    try:
        follower.info("hidden at WARNING")  # no stale answer cached from the first call
        follower.warning("still shown")
    finally:
        run_logger.setLevel(logging.INFO)
    out = capsys.readouterr().out
    assert "visible at INFO" in out and "still shown" in out and "hidden" not in out


def test_other_ranks_print_warnings_only_and_write_no_shared_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(logger_module, "get_rank", lambda: 1)
    monkeypatch.setattr(mm_logger_module, "get_rank", lambda: 1)
    monkeypatch.setattr(mm_logger_module, "get_world_size", lambda: 2)
    path = tmp_path / "run.log"
    logger = MMLogger.get_instance(unique("mm"), log_file=str(path))
    logger.info("info from rank 1")
    logger.warning("warning from rank 1")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "warning from rank 1" in lines[0]
    assert logger.log_file is None and not path.exists()


def test_distributed_files_are_named_by_rank(monkeypatch, tmp_path):
    monkeypatch.setattr(mm_logger_module, "get_rank", lambda: 1)
    monkeypatch.setattr(mm_logger_module, "get_world_size", lambda: 2)
    monkeypatch.setattr(mm_logger_module, "get_local_rank", lambda: 1)
    logger = MMLogger.get_instance(unique("mm"), log_file=str(tmp_path / "run.log"), distributed=True)
    logger.warning("rank 1 writes its own file")
    for handler in logger.handlers:
        handler.close()
    name = logger.log_file
    assert name is not None and name.startswith(str(tmp_path)) and name.endswith("_device1_rank1.log")
    assert "rank 1 writes its own file" in open(name, encoding="utf-8").read()


def test_single_process_distributed_keeps_the_file_name(tmp_path):
    path = str(tmp_path / "run.log")
    assert MMLogger.get_instance(unique("mm"), log_file=path, distributed=True).log_file == path


def test_file_handler_cfg(tmp_path):
    from logging.handlers import RotatingFileHandler

    path = tmp_path / "rot.log"
    cfg = dict(type="RotatingFileHandler", maxBytes=1024, backupCount=2)
    logger = MMLogger.get_instance(unique("mm"), log_file=str(path), file_handler_cfg=cfg)
    assert cfg["type"] == "RotatingFileHandler"  # the caller's dict is left as it was
    handlers = [h for h in logger.handlers if isinstance(h, RotatingFileHandler)]
    assert len(handlers) == 1 and handlers[0].maxBytes == 1024
    logger.info("rotated")
    handlers[0].close()
    assert "rotated" in path.read_text(encoding="utf-8")
    with pytest.raises(AssertionError, match="file_handler_cfg: needs 'type'"):
        MMLogger.get_instance(unique("mm"), log_file=str(path), file_handler_cfg=dict(maxBytes=1))
    with pytest.raises(ValueError, match="'NoSuchHandler' is not a file handler.*RotatingFileHandler"):
        MMLogger.get_instance(unique("mm"), log_file=str(path), file_handler_cfg=dict(type="NoSuchHandler"))


def test_print_log_by_instance_name_does_not_change_the_current_one(capsys):
    named = MMLogger.get_instance(unique("mm"), logger_name=unique("named"))
    current = MMLogger.get_instance(unique("mm"))
    print_log("to the named one", logger=named.instance_name, level="WARNING")
    assert MMLogger.get_current_instance() is current
    out = capsys.readouterr().out
    assert re.match(line_re("to the named one", "WARNING", name=named.name), out.strip())


def test_print_log_current_uses_the_newest_mmlogger(capsys):
    logger_name = unique("user")
    MMLogger.get_instance(unique("mm"), logger_name=logger_name)
    print_log("to current", logger="current")
    assert re.match(line_re("to current", name=logger_name), capsys.readouterr().out.strip())


def test_print_log_unknown_name_is_a_value_error():
    with pytest.raises(ValueError, match="no logger named 'never_made_xyz' has been created"):
        print_log("x", logger="never_made_xyz")


def test_set_current_logger_with_an_mmlogger():
    first = MMLogger.get_instance(unique("mm"))
    MMLogger.get_instance(unique("mm"))
    set_current_logger(first)
    assert MMLogger.get_current_instance() is first and get_current_logger() is first


def test_built_directly_with_positional_arguments(tmp_path, capsys):
    # Downstream projects build one directly: MMLogger(name, logger_name, log_file, log_level).
    path = tmp_path / "direct.log"
    logger_name = unique("proj")
    logger = MMLogger("direct", logger_name, str(path), logging.WARNING)
    logger.info("below the level")
    logger.error("an error")
    for handler in logger.handlers:
        handler.close()
    out = capsys.readouterr().out
    assert "below the level" not in out and re.match(line_re("an error", "ERROR", name=logger_name), out.strip())
    assert "an error" in path.read_text(encoding="utf-8")


def test_set_current_logger_by_instance_name(capsys):
    logger_name = unique("own")
    named = MMLogger.get_instance(unique("mm"), logger_name=logger_name)
    MMLogger.get_instance(unique("mm"))
    set_current_logger(named.instance_name)
    assert get_current_logger() is named and named.name == logger_name
    print_log("through the named one", logger="current")
    assert re.match(line_re("through the named one", name=logger_name), capsys.readouterr().out.strip())
