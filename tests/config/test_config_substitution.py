"""`{{_base_.a.b}}` placeholders in every format, and `_base_.a.b` as a variable in .py configs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigDict, ConfigError

BASE = """
lr = 0.1
max_epochs = 12
name = 'resnet'
model = dict(type='MLP', hidden=64, head=dict(num_classes=10))
layers = [3, 4, 6]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    write(tmp_path / "base.py", BASE)
    return tmp_path


def test_python_placeholders_keep_type_or_give_text(base_dir):
    child = write(
        base_dir / "child.py",
        """
        _base_ = 'base.py'
        whole_dict = '{{_base_.model}}'
        whole_float = "{{ _base_.lr }}"
        bare = {{_base_.max_epochs}}
        nested = '{{_base_.model.head.num_classes}}'
        listed = '{{_base_.layers}}'
        item = '{{_base_.layers.1}}'
        label = 'run_{{_base_.name}}_lr{{_base_.lr}}'
        in_expr = {{_base_.max_epochs}} * 2
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.whole_dict.to_dict() == {"type": "MLP", "hidden": 64, "head": {"num_classes": 10}}
    assert isinstance(cfg.whole_dict, ConfigDict)
    assert cfg.whole_float == 0.1 and isinstance(cfg.whole_float, float)
    assert cfg.bare == 12 and isinstance(cfg.bare, int)
    assert cfg.nested == 10
    assert cfg.listed == [3, 4, 6]
    assert cfg.item == 4
    assert cfg.label == "run_resnet_lr0.1"
    assert cfg.in_expr == 24


def test_python_base_variable(base_dir):
    child = write(
        base_dir / "child.py",
        """
        _base_ = 'base.py'
        lr = _base_.lr * 2
        hidden = _base_.model.hidden + 1
        head = _base_.model['head']
        first = _base_.layers[0]
        model = dict(hidden=_base_.model.hidden * 4)
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.lr == pytest.approx(0.2)
    assert cfg.hidden == 65
    assert cfg.head.to_dict() == {"num_classes": 10}
    assert cfg.first == 3
    # The child's own `model` still merges into the base's.
    assert cfg.model.to_dict() == {"type": "MLP", "hidden": 256, "head": {"num_classes": 10}}


def test_changing_base_variable_does_not_change_the_base_values(base_dir):
    child = write(
        base_dir / "child.py",
        """
        _base_ = 'base.py'
        head = _base_.model.head
        head.num_classes = 99
        _base_.layers.append(8)
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.head.num_classes == 99
    assert cfg.model.head.num_classes == 10
    assert cfg.layers == [3, 4, 6]


def test_base_variable_to_missing_key_lists_existing_keys(base_dir):
    child = write(base_dir / "child.py", "_base_ = 'base.py'\na = 1\nlr = _base_.lrr * 2\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert f"{child}, line 3" in message
    assert "'lrr'" in message
    assert "Did you mean 'lr'?" in message


@pytest.mark.parametrize("text", ["x = '{{_base_.optimizer}}'\n", "x = 'a{{_base_.model.depth}}'\n"])
def test_python_placeholder_to_missing_key(base_dir, text):
    child = write(base_dir / "child.py", "_base_ = 'base.py'\n" + text)
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert str(child) in message
    assert "missing" in message or "no key" in message


def test_embedded_placeholder_to_missing_key_names_the_key(base_dir):
    child = write(base_dir / "child.py", "_base_ = 'base.py'\nx = 'a{{_base_.model.depth}}'\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert "{{_base_.model.depth}}" in message
    assert "'depth' is missing" in message
    assert "base files do not define" in message


def test_json_placeholders(base_dir):
    child = base_dir / "child.json"
    child.write_text(
        json.dumps(
            {
                "_base_": "base.py",
                "model_copy": "{{_base_.model}}",
                "lr": "{{_base_.lr}}",
                "label": "epochs={{_base_.max_epochs}}",
                "inner": {"list": ["{{_base_.layers.2}}", "x"]},
            }
        ),
        encoding="utf-8",
    )
    cfg = Config.fromfile(child)
    assert cfg.model_copy.to_dict() == {"type": "MLP", "hidden": 64, "head": {"num_classes": 10}}
    assert cfg.lr == 0.1 and isinstance(cfg.lr, float)
    assert cfg["label"] == "epochs=12"
    assert cfg.inner.list == [6, "x"]
    assert cfg.max_epochs == 12  # the base's own keys are still there


def test_yaml_placeholders(base_dir):
    child = write(
        base_dir / "child.yaml",
        """
        _base_: [base.py]
        model_copy: '{{_base_.model.head}}'
        lr: '{{_base_.lr}}'
        label: 'name-{{_base_.name}}'
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.model_copy.to_dict() == {"num_classes": 10}
    assert cfg.lr == 0.1 and isinstance(cfg.lr, float)
    assert cfg.label == "name-resnet"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_data_placeholder_to_missing_key(base_dir, suffix):
    child = base_dir / f"child{suffix}"
    child.write_text(json.dumps({"_base_": "base.py", "x": "{{_base_.model.nope}}"}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert str(child) in message
    assert "{{_base_.model.nope}}" in message
    assert "'nope' is missing" in message


def test_placeholder_reads_the_merged_bases(tmp_path):
    write(tmp_path / "a.py", "lr = 0.5\n")
    write(tmp_path / "b.py", "epochs = 3\n")
    child = write(tmp_path / "c.py", "_base_ = ['a.py', 'b.py']\ntotal = '{{_base_.lr}}' * {{_base_.epochs}}\n")
    assert Config.fromfile(child).total == pytest.approx(1.5)
