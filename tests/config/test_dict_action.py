"""DictAction: `--cfg-options KEY=VALUE ...` parsed by argparse."""

from __future__ import annotations

import argparse

import pytest

from minirunner.config import Config, ConfigError, DictAction


def parse(*items: str) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    return parser.parse_args(["--cfg-options", *items]).cfg_options


@pytest.mark.parametrize(
    "item, expected",
    [
        ("a=1", 1),
        ("a=-3", -3),
        ("a=0.01", 0.01),
        ("a=1e-4", 1e-4),
        ("a=true", True),
        ("a=True", True),
        ("a=false", False),
        ("a=FALSE", False),
        ("a=None", None),
        ("a=none", None),
        ("a=SGD", "SGD"),
        ("a=", ""),
        ("a=x,y,z", ["x", "y", "z"]),
        ("a=1,2,3", [1, 2, 3]),
        ("a=1,", [1]),
        ("a=[1,2]", [1, 2]),
        ("a=[1, 2]", [1, 2]),
        ("a=(1,2)", (1, 2)),
        ("a=(1,)", (1,)),
        ("a=[]", []),
        ("a=()", ()),
        ("a=[(1,2),(3,4)]", [(1, 2), (3, 4)]),
        ("a=[[1,[2,3]],(x,0.5)]", [[1, [2, 3]], ("x", 0.5)]),
        ("a=(1,2),(3,4)", [(1, 2), (3, 4)]),
        ("a=[true,None,'s']", [True, None, "s"]),
        ("a='1'", "1"),
        ('a="true"', "true"),
        ("a='hello world'", "hello world"),
        ('a="x,y"', "x,y"),
        ("a='[b'", "[b"),
        ("a=['a]','b']", ["a]", "b"]),
        ("a=b=c", "b=c"),
    ],
)
def test_values(item, expected):
    result = parse(item)
    assert result == {"a": expected}
    value = result["a"]
    assert type(value) is type(expected)
    if isinstance(expected, (list, tuple)):
        assert [type(v) for v in value] == [type(v) for v in expected]


def test_several_items_and_dotted_keys():
    assert parse("optim_wrapper.optimizer.lr=0.01", "train_cfg.max_epochs=3", "pipeline.0.type=X") == {
        "optim_wrapper.optimizer.lr": 0.01,
        "train_cfg.max_epochs": 3,
        "pipeline.0.type": "X",
    }


def test_later_item_wins_and_repeated_option_accumulates():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    args = parser.parse_args(["--cfg-options", "a=1", "a=2", "--cfg-options", "b=3"])
    assert args.cfg_options == {"a": 2, "b": 3}


def test_default_is_none_without_the_option():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    assert parser.parse_args([]).cfg_options is None


def test_bad_item_without_equals():
    with pytest.raises(ConfigError) as info:
        parse("a=1", "lr0.01")
    message = str(info.value)
    assert "--cfg-options" in message
    assert "'lr0.01' is not KEY=VALUE" in message
    assert "optim_wrapper.optimizer.lr=0.01" in message


def test_bad_item_without_key():
    with pytest.raises(ConfigError, match=r"'=3' is not KEY=VALUE"):
        parse("=3")


@pytest.mark.parametrize(
    "item, text",
    [("a=[1,2", "[1,2"), ("a=1,2]", "1,2]"), ("a=[(1,2],3)", "[(1,2],3)"), ("a=[1,2)", "[1,2)")],
)
def test_unbalanced_brackets(item, text):
    with pytest.raises(ConfigError) as info:
        parse(item)
    message = str(info.value)
    assert "--cfg-options" in message
    assert f"cannot parse the value of 'a' ({text!r})" in message
    assert "unbalanced brackets" in message


def test_options_apply_to_a_config():
    cfg = Config(dict(optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)), pipeline=[dict(type="A")]))
    cfg.merge_from_dict(parse("optim_wrapper.optimizer.lr=0.5", "pipeline.0.type=B", "work_dir=runs/x"))
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.pipeline[0].type == "B"
    assert cfg.work_dir == "runs/x"
