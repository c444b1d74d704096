"""MMEngine's Config API beyond loading: the constructor's signature, reserved keys,
`fromstring`, `diff`, `auto_argparser`, and ConfigDict keeping the user's own dict subclasses.

Written from MMEngine's `Config`/`ConfigDict` documentation and source (mmengine/config/config.py).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import OrderedDict, defaultdict

import pytest

from minirunner.config import Config, ConfigDict, ConfigError, add_args


class Tagged(dict):
    """A user's own dict subclass: ConfigDict keeps its class."""

    def tag(self) -> str:
        return "tagged:" + ",".join(sorted(self))


# ---------------------------------------------------------------------------- constructor
def test_constructor_takes_mmengine_positional_order(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("a = 1\n", encoding="utf-8")
    cfg = Config(dict(a=1), "the text", str(path))
    assert cfg.text == "the text"
    assert cfg.filename == str(path)
    # Without cfg_text, the text is read from the file.
    assert Config(dict(a=1), filename=path).text == "a = 1\n"
    assert Config(dict(a=1), cfg_text="x", env_variables={"A": "1"}).env_variables == {"A": "1"}


@pytest.mark.parametrize("key", ["filename", "text", "pretty_text", "env_variables"])
def test_reserved_keys_are_a_key_error(key):
    with pytest.raises(KeyError) as info:
        Config({key: 1})
    assert isinstance(info.value, ConfigError)
    assert "reserved" in str(info.value)


def test_cfg_dict_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError):
        Config([("a", 1)])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fromstring
@pytest.mark.parametrize(
    "text, suffix",
    [
        ("lr = 0.1\nmodel = dict(type='MLP', sizes=[1, 2])\n", ".py"),
        ('{"lr": 0.1, "model": {"type": "MLP", "sizes": [1, 2]}}', ".json"),
        ("lr: 0.1\nmodel:\n  type: MLP\n  sizes: [1, 2]\n", ".yaml"),
    ],
)
def test_fromstring_reads_each_format_like_a_file(text, suffix):
    if suffix == ".yaml":
        pytest.importorskip("yaml")
    cfg = Config.fromstring(text, suffix)
    assert cfg.to_dict() == {"lr": 0.1, "model": {"type": "MLP", "sizes": [1, 2]}}
    assert cfg.model.type == "MLP"


def test_fromstring_with_unknown_format_is_an_os_error():
    with pytest.raises(OSError) as info:
        Config.fromstring("a = 1", "py")
    assert isinstance(info.value, ConfigError)


def test_fromstring_warns_when_python_text_is_read_as_another_format():
    with pytest.warns(UserWarning, match="file_format"):
        with pytest.raises(ConfigError):
            Config.fromstring("model = dict(type='MLP')", ".json")


def test_fromstring_leaves_no_temporary_file():
    cfg = Config.fromstring("a = 1\n", ".py")
    assert cfg.a == 1
    import os

    assert not os.path.exists(cfg.filename)


# ---------------------------------------------------------------------------- diff
def test_diff_marks_removed_and_added_lines(tmp_path):
    first = Config(dict(lr=0.1, model=dict(type="MLP")))
    second = Config(dict(lr=0.2, model=dict(type="MLP")))
    text = Config.diff(first, second)
    lines = text.splitlines()
    assert "-lr = 0.1" in lines
    assert "+lr = 0.2" in lines
    assert "-model = dict(type='MLP')" not in lines


def test_diff_accepts_paths_and_is_empty_for_equal_configs(tmp_path):
    a = tmp_path / "a.py"
    a.write_text("lr = 0.1\n", encoding="utf-8")
    b = tmp_path / "b.py"
    b.write_text("lr = 0.1  # same value\n", encoding="utf-8")
    assert Config.diff(str(a), str(b)) == ""
    assert "+lr = 0.3" in Config.diff(str(a), Config(dict(lr=0.3))).splitlines()


# ---------------------------------------------------------------------------- auto_argparser
def test_auto_argparser_adds_an_option_per_key(tmp_path, monkeypatch):
    path = tmp_path / "c.py"
    path.write_text(
        "name = 'run'\nlr = 0.1\nepochs = 3\nuse_amp = False\nsizes = [1, 2]\n"
        "model = dict(depth=18, act=dict(type='ReLU'))\nnothing = None\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(sys, "argv", ["train.py", str(path), "--lr", "0.5"])
    parser, cfg = Config.auto_argparser("my tool")
    assert isinstance(parser, argparse.ArgumentParser)
    assert parser.description == "my tool"
    assert cfg.lr == 0.1
    args = parser.parse_args(
        [str(path), "--lr", "0.5", "--epochs", "7", "--use_amp", "--sizes", "3", "4", "--model.depth", "50",
         "--model.act.type", "GELU", "--name", "other"]
    )
    assert args.config == str(path)
    assert args.lr == 0.5 and args.epochs == 7 and args.use_amp is True
    assert args.sizes == [3, 4]
    assert getattr(args, "model.depth") == 50
    assert getattr(args, "model.act.type") == "GELU"
    assert args.name == "other"
    with pytest.raises(SystemExit):
        parser.parse_args([str(path), "--nothing", "x"])


def test_add_args_flags_and_types():
    parser = add_args(argparse.ArgumentParser(), {"flag": True, "ratio": 1.5, "ids": (1, 2)})
    args = parser.parse_args(["--ratio", "2", "--ids", "5"])
    assert args.flag is False and args.ratio == 2.0 and args.ids == [5]


# ---------------------------------------------------------------------------- dict subclasses
def test_user_dict_subclasses_keep_their_class_plain_and_ordered_dicts_convert():
    cfg = ConfigDict(
        tagged=Tagged(a=1),
        plain=dict(a=1),
        ordered=OrderedDict(a=1),
        listed=[Tagged(b=2), dict(c=3)],
    )
    assert type(cfg.tagged) is Tagged and cfg.tagged.tag() == "tagged:a"
    assert type(cfg.plain) is ConfigDict
    assert type(cfg.ordered) is ConfigDict
    assert type(cfg.listed[0]) is Tagged
    assert type(cfg.listed[1]) is ConfigDict


def test_setting_a_key_converts_dicts_and_keeps_subclasses():
    cfg = ConfigDict()
    cfg.model = dict(head=dict(num_classes=3))
    cfg["extra"] = Tagged(x=1)
    assert cfg.model.head.num_classes == 3
    assert type(cfg.extra) is Tagged


def test_dict_subclasses_survive_config_merge_copy_and_to_dict():
    factory = defaultdict(list, a=[1])
    cfg = Config(dict(model=dict(meta=Tagged(a=1)), groups=factory))
    assert type(cfg.model.meta) is Tagged
    cfg.merge_from_dict({"model.meta": dict(b=2), "model.depth": 18})
    assert type(cfg.model.meta) is Tagged and dict(cfg.model.meta) == {"a": 1, "b": 2}
    assert type(copy.deepcopy(cfg).model.meta) is Tagged
    plain = cfg.to_dict()
    assert type(plain["model"]) is dict
    assert type(plain["model"]["meta"]) is Tagged
    assert type(plain["groups"]) is defaultdict and plain["groups"].default_factory is list
    cfg["top"] = Tagged(z=0)
    assert type(cfg.top) is Tagged


def test_dict_subclass_survives_base_merge(tmp_path):
    (tmp_path / "base.py").write_text(
        "from collections import defaultdict\nd = defaultdict(int, a=1)\n", encoding="utf-8"
    )
    (tmp_path / "child.py").write_text("_base_ = 'base.py'\nd = dict(b=2)\n", encoding="utf-8")
    cfg = Config.fromfile(tmp_path / "child.py")
    assert type(cfg.d) is defaultdict and dict(cfg.d) == {"a": 1, "b": 2}


def test_config_dict_merge_follows_base_rules():
    cfg = ConfigDict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), keep=1)
    cfg.merge(dict(optimizer=dict(lr=0.01)))
    assert cfg.to_dict() == {"optimizer": {"type": "SGD", "lr": 0.01, "momentum": 0.9}, "keep": 1}
    cfg.merge(optimizer=dict(_delete_=True, type="Adam"))
    assert cfg.optimizer.to_dict() == {"type": "Adam"}
    cfg.optimizer.merge(_delete_=True, type="AdamW", lr=0.001)
    assert cfg.optimizer.to_dict() == {"type": "AdamW", "lr": 0.001}
    assert isinstance(cfg.optimizer, ConfigDict)


def test_update_is_recursive_for_config_dicts():
    cfg = ConfigDict(a=1, b=dict(c=2, d=3))
    cfg.update(dict(b=dict(d=4)))
    assert cfg.to_dict() == {"a": 1, "b": {"c": 2, "d": 4}}


# ---------------------------------------------------------------------------- dump, custom_imports
def test_dump_without_file_uses_the_format_of_the_source_file(tmp_path):
    import json

    path = tmp_path / "c.json"
    path.write_text('{"lr": 0.1, "sizes": [1, 2]}', encoding="utf-8")
    cfg = Config.fromfile(path)
    assert json.loads(cfg.dump()) == {"lr": 0.1, "sizes": [1, 2]}
    assert Config(dict(lr=0.1)).dump() == "lr = 0.1\n"


def test_custom_import_failure_is_an_import_error(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("custom_imports = dict(imports=['no_such_module_mr'], allow_failed_imports=False)\n")
    with pytest.raises(ImportError) as info:
        Config.fromfile(path)
    assert isinstance(info.value, ConfigError)
    assert "no_such_module_mr" in str(info.value)
