"""`{{$NAME:default}}` environment variables and the predefined `{{fileDirname}}`-style variables.

Written from MMEngine's config tutorial ("Predefined fields", "Replace fields with environment
variables") and `Config.fromfile(use_predefined_variables=..., use_environment_variables=...)`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigError

ENV_CHILD = """
data_root = '{{$MR_TEST_DATA_ROOT:/default/data}}/images'
model = dict(head=dict(num_classes={{$MR_TEST_NUM_CLASSES:80}}))
quoted = {{'$MR_TEST_NUM_CLASSES:80'}}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("MR_TEST_DATA_ROOT", "MR_TEST_NUM_CLASSES", "MR_TEST_REQUIRED"):
        monkeypatch.delenv(name, raising=False)


def test_environment_variables_fall_back_to_their_defaults(tmp_path):
    cfg = Config.fromfile(write(tmp_path / "c.py", ENV_CHILD))
    assert cfg.data_root == "/default/data/images"
    assert cfg.model.head.num_classes == 80 and isinstance(cfg.model.head.num_classes, int)
    assert cfg.quoted == 80
    assert cfg.env_variables == {}


def test_environment_variables_replace_text_and_numbers(tmp_path, monkeypatch):
    monkeypatch.setenv("MR_TEST_DATA_ROOT", "/mnt/data")
    monkeypatch.setenv("MR_TEST_NUM_CLASSES", "19")
    cfg = Config.fromfile(write(tmp_path / "c.py", ENV_CHILD))
    assert cfg.data_root == "/mnt/data/images"
    assert cfg.model.head.num_classes == 19
    assert cfg.quoted == 19
    assert cfg.env_variables == {"MR_TEST_DATA_ROOT": "/mnt/data", "MR_TEST_NUM_CLASSES": "19"}


def test_environment_variables_in_a_base_and_in_json(tmp_path, monkeypatch):
    monkeypatch.setenv("MR_TEST_NUM_CLASSES", "7")
    write(tmp_path / "base.py", "num_classes = {{$MR_TEST_NUM_CLASSES:1}}\n")
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"_base_": "base.py", "root": "{{$MR_TEST_DATA_ROOT:data}}/x"}), encoding="utf-8")
    cfg = Config.fromfile(child)
    assert cfg.num_classes == 7
    assert cfg.root == "data/x"
    assert cfg.env_variables == {"MR_TEST_NUM_CLASSES": "7"}


def test_unset_variable_without_default_is_a_key_error_naming_file_and_line(tmp_path):
    path = write(tmp_path / "c.py", "a = 1\nroot = '{{$MR_TEST_REQUIRED:}}'\n")
    with pytest.raises(KeyError) as info:
        Config.fromfile(path)
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert f"{path}, line 2" in message
    assert "MR_TEST_REQUIRED" in message and "not set" in message


def test_environment_substitution_can_be_turned_off(tmp_path):
    path = write(tmp_path / "c.py", "root = '{{$MR_TEST_DATA_ROOT:data}}'\n")
    assert Config.fromfile(path, use_environment_variables=False).root == "{{$MR_TEST_DATA_ROOT:data}}"


def test_predefined_variables_in_python(tmp_path):
    path = write(
        tmp_path / "sub" / "my_config.py",
        """
        work_dir = './work_dirs/{{ fileBasenameNoExtension }}'
        folder = '{{fileDirname}}'
        name = '{{fileBasename}}'
        ext = '{{fileExtname}}'
        """,
    )
    cfg = Config.fromfile(path)
    assert cfg.work_dir == "./work_dirs/my_config"
    assert cfg.folder == str(tmp_path / "sub").replace("\\", "/")
    assert cfg.name == "my_config.py"
    assert cfg.ext == ".py"


def test_predefined_variables_belong_to_the_file_that_uses_them(tmp_path):
    write(tmp_path / "base_runtime.py", "log_name = '{{fileBasenameNoExtension}}.log'\n")
    child = write(tmp_path / "exp.py", "_base_ = 'base_runtime.py'\nwork_dir = 'w/{{fileBasenameNoExtension}}'\n")
    cfg = Config.fromfile(child)
    assert cfg.log_name == "base_runtime.log"
    assert cfg.work_dir == "w/exp"


def test_predefined_variables_in_yaml(tmp_path):
    pytest.importorskip("yaml")
    path = write(tmp_path / "exp.yaml", "work_dir: 'work_dirs/{{fileBasenameNoExtension}}{{fileExtname}}'\n")
    assert Config.fromfile(path).work_dir == "work_dirs/exp.yaml"


def test_predefined_variables_can_be_turned_off(tmp_path):
    path = write(tmp_path / "exp.py", "work_dir = '{{fileBasename}}'\n")
    assert Config.fromfile(path, use_predefined_variables=False).work_dir == "{{fileBasename}}"


def test_text_keeps_the_placeholders(tmp_path):
    path = write(tmp_path / "exp.py", "work_dir = '{{fileBasename}}'\n")
    cfg = Config.fromfile(path)
    assert "work_dir = '{{fileBasename}}'" in cfg.text
    assert cfg.work_dir == "exp.py"
