"""Config files are read as UTF-8: any other encoding is a ConfigError that names the file,
the line and column, and says to save it as UTF-8 (not a UnicodeDecodeError traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigError

# 'é' in Latin-1 is the single byte 0xe9, which cannot appear alone in UTF-8.
LATIN1_LINE = "# learning rate tuned by Ren\u00e9\n".encode("latin-1")


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    return str(info.value)


def test_latin1_comment_names_file_line_and_column(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_bytes(b"lr = 0.1\n" + LATIN1_LINE)
    message = _error(path)
    assert message.startswith(f"{path}, line 2, column 29: byte 0xe9 (offset 37) is not valid UTF-8;")
    assert "save it as UTF-8" in message
    assert "\n" not in message  # tools/train.py prints it as one line


def test_latin1_base_file_names_the_base_and_who_names_it(tmp_path):
    base = tmp_path / "_base_" / "schedule.py"
    base.parent.mkdir()
    base.write_bytes(LATIN1_LINE + b"lr = 0.1\n")
    child = tmp_path / "cfg.py"
    child.write_text("_base_ = './_base_/schedule.py'\nmodel = dict(type='MLP')\n", encoding="utf-8")
    message = _error(child)
    assert message.startswith(f"{base}, line 1, column 29 (a _base_ file of {child}): byte 0xe9")
    assert "save it as UTF-8" in message


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_data_formats_too(tmp_path, suffix):
    if suffix == ".yaml":
        pytest.importorskip("yaml")
    path = tmp_path / f"cfg{suffix}"
    text = '{"name": "Ren\u00e9"}' if suffix == ".json" else "name: Ren\u00e9\n"
    path.write_bytes(text.encode("latin-1"))
    assert _error(path).startswith(f"{path}, line 1, column ")


def test_utf8_with_byte_order_mark_loads(tmp_path):
    # Some Windows editors save UTF-8 with a BOM; Python and JSON reject it in a str.
    py = tmp_path / "cfg.py"
    py.write_bytes("\ufeffname = 'Ren\u00e9'\n".encode("utf-8"))
    assert Config.fromfile(py).name == "Ren\u00e9"
    data = tmp_path / "cfg.json"
    data.write_bytes("\ufeff".encode("utf-8") + json.dumps({"name": "Ren\u00e9"}).encode("utf-8"))
    assert Config.fromfile(data).name == "Ren\u00e9"


def test_utf8_text_keeps_loading(tmp_path):
    path = tmp_path / "cfg.py"
    path.write_text("# r\u00e9glage\nname = 'Ren\u00e9'\n", encoding="utf-8")
    cfg = Config.fromfile(path)
    assert cfg.name == "Ren\u00e9"
    assert "r\u00e9glage" in cfg.text
