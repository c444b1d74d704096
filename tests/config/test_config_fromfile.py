"""Config.fromfile: the three file formats, `_base_` inheritance and the loading errors."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigDict, ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- formats
def test_python_config(tmp_path):
    path = write(
        tmp_path / "cfg.py",
        """
        import math
        lr = 0.1
        def helper(x):
            return x * 2
        model = dict(type='MLP', hidden=helper(32), sizes=[1, 2, 3], shape=(3, 4))
        optimizer = dict(type='SGD', lr=lr, momentum=0.9, nesterov=True, clip=None)
        angle = math.pi
        """,
    )
    cfg = Config.fromfile(path)
    assert cfg.lr == 0.1
    assert cfg.model.type == "MLP"
    assert cfg.model.hidden == 64
    assert cfg.model.sizes == [1, 2, 3]
    assert cfg.model.shape == (3, 4)
    assert cfg.optimizer.to_dict() == dict(type="SGD", lr=0.1, momentum=0.9, nesterov=True, clip=None)
    assert cfg.angle == pytest.approx(3.141592653589793)
    # Modules and helper functions are tools of the config, not settings.
    assert "math" not in cfg
    assert "helper" not in cfg
    assert isinstance(cfg.model, ConfigDict)
    assert cfg["optimizer"]["lr"] == 0.1


def test_fromfile_accepts_str_and_pathlike(tmp_path):
    path = write(tmp_path / "cfg.py", "a = 1\n")
    assert Config.fromfile(str(path)).a == 1
    assert Config.fromfile(path).a == 1


def test_json_config(tmp_path):
    data = {"model": {"type": "MLP", "hidden": 64}, "sizes": [1, 2], "flag": True, "none": None, "lr": 0.5}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == data
    assert cfg.model.hidden == 64
    assert isinstance(cfg.model, ConfigDict)


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_config(tmp_path, suffix):
    path = write(
        tmp_path / f"cfg{suffix}",
        """
        model:
          type: MLP
          hidden: 64
        sizes: [1, 2]
        flag: true
        lr: 0.5
        nothing: null
        """,
    )
    cfg = Config.fromfile(path)
    assert cfg.to_dict() == {
        "model": {"type": "MLP", "hidden": 64},
        "sizes": [1, 2],
        "flag": True,
        "lr": 0.5,
        "nothing": None,
    }
    assert cfg.model.type == "MLP"


def test_empty_yaml_is_empty_config(tmp_path):
    path = write(tmp_path / "empty.yaml", "# nothing here\n")
    assert Config.fromfile(path).to_dict() == {}


def test_yaml_without_pyyaml_says_how_to_install(tmp_path, monkeypatch):
    path = write(tmp_path / "cfg.yaml", "a: 1\n")
    # A None entry in sys.modules makes `import yaml` raise ImportError.
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert str(path) in message
    assert "PyYAML" in message
    assert "pip install -e '.[yaml]'" in message


def test_yaml_base_without_pyyaml_is_named(tmp_path, monkeypatch):
    write(tmp_path / "base.yaml", "a: 1\n")
    child = write(tmp_path / "child.py", "_base_ = 'base.yaml'\nb = 2\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigError, match=r"base\.yaml.*PyYAML"):
        Config.fromfile(child)


def test_filename_is_absolute(tmp_path, monkeypatch):
    write(tmp_path / "cfg.py", "a = 1\n")
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile("cfg.py")
    assert cfg.filename == str(tmp_path / "cfg.py")
    assert os.path.isabs(cfg.filename)


# ---------------------------------------------------------------------------- _base_
def test_base_as_path_merges_dicts_and_replaces_lists_and_scalars(tmp_path):
    write(
        tmp_path / "base.py",
        """
        lr = 0.1
        model = dict(type='MLP', hidden=64, layers=[1, 2, 3], head=dict(act='relu', drop=0.5))
        kept = 'base'
        """,
    )
    child = write(
        tmp_path / "child.py",
        """
        _base_ = './base.py'
        lr = 0.2
        model = dict(hidden=128, layers=[7], head=dict(drop=0.1))
        extra = 1
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.to_dict() == {
        "lr": 0.2,
        "model": {"type": "MLP", "hidden": 128, "layers": [7], "head": {"act": "relu", "drop": 0.1}},
        "kept": "base",
        "extra": 1,
    }
    assert "_base_" not in cfg


def test_base_as_list_relative_to_including_file_two_levels(tmp_path, monkeypatch):
    # configs/exp/child.py -> ../_base_/{model,schedule}.py; model.py -> ./defaults/init.py
    write(tmp_path / "configs/_base_/defaults/init.py", "init = dict(type='normal', std=0.02)\nseed = 1\n")
    write(
        tmp_path / "configs/_base_/model.py",
        """
        _base_ = 'defaults/init.py'
        model = dict(type='MLP', hidden=64)
        init = dict(std=0.01)
        """,
    )
    write(tmp_path / "configs/_base_/schedule.py", "optimizer = dict(type='SGD', lr=0.1)\nmax_epochs = 10\n")
    child = write(
        tmp_path / "configs/exp/child.py",
        """
        _base_ = ['../_base_/model.py', '../_base_/schedule.py']
        optimizer = dict(lr=0.01)
        """,
    )
    # Loaded by a relative path from elsewhere: bases resolve against each including file.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cfg = Config.fromfile(os.path.join("..", "configs", "exp", "child.py"))
    assert cfg.filename == str(child)
    assert cfg.to_dict() == {
        "init": {"type": "normal", "std": 0.01},
        "seed": 1,
        "model": {"type": "MLP", "hidden": 64},
        "optimizer": {"type": "SGD", "lr": 0.01},
        "max_epochs": 10,
    }


def test_base_across_formats(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"model": {"type": "MLP", "hidden": 8}}), encoding="utf-8")
    write(tmp_path / "mid.yaml", "_base_: base.json\nmodel:\n  hidden: 16\n")
    child = write(tmp_path / "child.py", "_base_ = 'mid.yaml'\nmodel = dict(depth=2)\n")
    cfg = Config.fromfile(child)
    assert cfg.model.to_dict() == {"type": "MLP", "hidden": 16, "depth": 2}


def test_delete_replaces_instead_of_merging(tmp_path):
    write(
        tmp_path / "base.py",
        "optimizer = dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True)\n"
        "model = dict(head=dict(type='Linear', bias=True), depth=2)\n",
    )
    child = write(
        tmp_path / "child.py",
        """
        _base_ = 'base.py'
        optimizer = dict(_delete_=True, type='Adam', lr=0.001)
        model = dict(head=dict(_delete_=True, type='Conv'))
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.optimizer.to_dict() == {"type": "Adam", "lr": 0.001}
    assert cfg.model.to_dict() == {"head": {"type": "Conv"}, "depth": 2}
    assert "_delete_" not in cfg.pretty_text


def test_same_key_in_two_bases_names_both_files(tmp_path):
    a = write(tmp_path / "a.py", "optimizer = dict(type='SGD')\n")
    b = write(tmp_path / "b.py", "optimizer = dict(type='Adam')\n")
    child = write(tmp_path / "child.py", "_base_ = ['a.py', 'b.py']\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert "'optimizer'" in message
    assert "two _base_ files" in message
    assert str(a) in message and str(b) in message


def test_circular_base_is_an_error(tmp_path):
    write(tmp_path / "a.py", "_base_ = 'b.py'\nx = 1\n")
    write(tmp_path / "b.py", "_base_ = 'a.py'\ny = 2\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(tmp_path / "a.py")
    message = str(info.value)
    assert "circular _base_" in message
    assert "a.py -> b.py -> a.py" in message


def test_self_including_base_is_circular(tmp_path):
    write(tmp_path / "self.py", "_base_ = 'self.py'\n")
    with pytest.raises(ConfigError, match="circular _base_"):
        Config.fromfile(tmp_path / "self.py")


def test_missing_base_names_both_files(tmp_path):
    child = write(tmp_path / "sub/child.py", "_base_ = '../nope/base.py'\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert message.startswith("_base_: ")
    assert str(child) in message
    assert "'../nope/base.py'" in message
    assert str(tmp_path / "nope" / "base.py") in message
    assert "does not exist" in message
    assert "relative to the file that names them" in message


def test_missing_base_in_json_config(tmp_path):
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"_base_": ["gone.py"], "a": 1}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"child\.json names the base file 'gone\.py', which does not exist"):
        Config.fromfile(child)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "missing.py"
    with pytest.raises(ConfigError) as info:
        Config.fromfile(missing)
    message = str(info.value)
    assert "config file not found" in message
    assert str(missing) in message
    assert isinstance(info.value, ValueError)


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path / "cfg.txt", "a = 1\n")
    with pytest.raises(ConfigError, match=r"cfg\.txt.*\.py, \.json, \.yaml, \.yml.*'\.txt'"):
        Config.fromfile(path)


def test_python_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.py", "a = 1\nb = 2\nmodel = dict(type='MLP',\nc = 3 +\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert f"{path}, line " in message
    assert "syntax error" in message


def test_python_syntax_error_line_number(tmp_path):
    path = write(tmp_path / "bad.py", "a = 1\nb = 2\nc = = 3\nd = 4\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert f"{path}, line 3: syntax error" in message
    assert "c = = 3" in message


def test_syntax_error_in_base_names_the_base(tmp_path):
    base = write(tmp_path / "base.py", "x = (\n")
    child = write(tmp_path / "child.py", "_base_ = 'base.py'\n")
    with pytest.raises(ConfigError, match=re.escape(f"{base}, line 1")):
        Config.fromfile(child)


def test_python_runtime_error_names_file_and_line(tmp_path):
    path = write(tmp_path / "boom.py", "a = 1\nb = 2\nc = undefined_name + 1\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert f"{path}, line 3" in message
    assert "NameError" in message
    assert "undefined_name" in message
    assert isinstance(info.value.__cause__, NameError)


def test_python_runtime_error_inside_helper_function(tmp_path):
    path = write(
        tmp_path / "boom.py",
        """
        def f():
            return 1 / 0
        a = 1
        b = f()
        """,
    )
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    # The innermost line of the config file is where the error happened.
    assert f"{path}, line 2" in message
    assert "ZeroDivisionError" in message


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": \n}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 4: invalid JSON")):
        Config.fromfile(path)


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert str(path) in message
    assert "invalid YAML" in message
    assert ", line " in message


def test_non_mapping_json_is_an_error(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a mapping at the top, got list"):
        Config.fromfile(path)


def test_base_must_be_literal(tmp_path):
    path = write(tmp_path / "cfg.py", "name = 'b.py'\n_base_ = name\n")
    with pytest.raises(ConfigError, match=r"line 2: _base_ must be a literal path"):
        Config.fromfile(path)


def test_base_of_wrong_type(tmp_path):
    path = write(tmp_path / "cfg.py", "_base_ = 3\n")
    with pytest.raises(ConfigError, match=r"_base_ must be a path or a list of paths, got 3"):
        Config.fromfile(path)


def test_base_file_is_not_changed_by_child(tmp_path):
    base = write(tmp_path / "base.py", "model = dict(a=1)\n")
    write(tmp_path / "c1.py", "_base_ = 'base.py'\nmodel = dict(a=2)\n")
    Config.fromfile(tmp_path / "c1.py")
    assert Config.fromfile(base).model.a == 1
