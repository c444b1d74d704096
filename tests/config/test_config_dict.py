"""ConfigDict: attribute access that fails loudly on a missing key."""

from __future__ import annotations

import copy
import pickle

import pytest

from minirunner.config import ConfigDict


def make() -> ConfigDict:
    return ConfigDict(
        optimizer=dict(type="SGD", lr=0.1),
        pipeline=[dict(type="Load"), [dict(type="Inner")], (dict(type="InTuple"),)],
        max_epochs=3,
    )


def test_attribute_and_item_access():
    cfg = make()
    assert cfg.optimizer.lr == 0.1
    assert cfg["optimizer"]["lr"] == 0.1
    assert cfg.optimizer["type"] == "SGD"
    assert cfg["max_epochs"] == cfg.max_epochs == 3
    cfg.optimizer.lr = 0.5
    assert cfg["optimizer"]["lr"] == 0.5
    cfg["new"] = 1
    assert cfg.new == 1


def test_nested_dicts_become_config_dicts_also_inside_lists():
    cfg = make()
    assert isinstance(cfg.optimizer, ConfigDict)
    assert isinstance(cfg.pipeline[0], ConfigDict)
    assert cfg.pipeline[0].type == "Load"
    assert isinstance(cfg.pipeline[1][0], ConfigDict)
    assert cfg.pipeline[1][0].type == "Inner"
    assert isinstance(cfg.pipeline[2], tuple)
    assert cfg.pipeline[2][0].type == "InTuple"


def test_missing_attribute_lists_keys_and_suggests():
    cfg = make()
    with pytest.raises(AttributeError) as info:
        cfg.optimzer
    message = str(info.value)
    assert "no key 'optimzer'" in message
    assert "'max_epochs', 'optimizer', 'pipeline'" in message
    assert "Did you mean 'optimizer'?" in message


def test_missing_item_lists_keys_and_suggests():
    cfg = make()
    with pytest.raises(KeyError) as info:
        cfg["max_epoch"]
    message = str(info.value)
    assert "no key 'max_epoch'" in message
    assert "'max_epochs', 'optimizer', 'pipeline'" in message
    assert "Did you mean 'max_epochs'?" in message


def test_missing_nested_key_lists_that_level_only():
    cfg = make()
    with pytest.raises(AttributeError) as info:
        cfg.optimizer.momentum
    message = str(info.value)
    assert "'lr', 'type'" in message
    assert "max_epochs" not in message


def test_missing_key_of_empty_dict():
    with pytest.raises(AttributeError, match=r"no key 'a' in this config \(keys: none\)"):
        ConfigDict().a


def test_missing_key_is_not_created():
    cfg = make()
    with pytest.raises(AttributeError):
        cfg.nothing.deeper = 1
    assert "nothing" not in cfg
    assert not hasattr(cfg, "nothing")
    assert "nothing" not in cfg
    assert hasattr(cfg, "optimizer")
    assert hasattr(cfg.optimizer, "lr")
    assert cfg.get("nothing") is None
    assert cfg.get("nothing", 5) == 5
    assert getattr(cfg, "nothing", "default") == "default"


def test_non_string_key_message():
    cfg = ConfigDict({1: "a"})
    assert cfg[1] == "a"
    with pytest.raises(KeyError, match=r"no key 2 in this config \(keys: '1'\)"):
        cfg[2]


def test_to_dict_returns_plain_containers():
    cfg = make()
    plain = cfg.to_dict()
    assert plain == {
        "optimizer": {"type": "SGD", "lr": 0.1},
        "pipeline": [{"type": "Load"}, [{"type": "Inner"}], ({"type": "InTuple"},)],
        "max_epochs": 3,
    }
    assert type(plain) is dict
    assert type(plain["optimizer"]) is dict
    assert type(plain["pipeline"][0]) is dict
    assert type(plain["pipeline"][1][0]) is dict
    assert type(plain["pipeline"][2][0]) is dict
    plain["optimizer"]["lr"] = 1.0
    assert cfg.optimizer.lr == 0.1


def test_constructor_does_not_keep_callers_dicts():
    inner = dict(lr=0.1)
    cfg = ConfigDict(optimizer=inner)
    cfg.optimizer.lr = 0.9
    assert inner == {"lr": 0.1}


def test_pickle_and_deepcopy():
    cfg = make()
    for clone in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert isinstance(clone, ConfigDict)
        assert clone == cfg
        assert isinstance(clone.pipeline[0], ConfigDict)
        clone.optimizer.lr = 7
        assert cfg.optimizer.lr == 0.1
        with pytest.raises(AttributeError, match="Did you mean 'optimizer'"):
            clone.optimiser


def test_is_a_dict():
    cfg = make()
    assert isinstance(cfg, dict)
    assert dict(cfg)["max_epochs"] == 3
    assert sorted(cfg.keys()) == ["max_epochs", "optimizer", "pipeline"]
