"""Config.merge_from_dict: dotted-key overrides as given by --cfg-options."""

from __future__ import annotations

import pytest

from minirunner.config import Config, ConfigDict, ConfigError


def make() -> Config:
    return Config(
        dict(
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
            pipeline=[dict(type="Load"), dict(type="Resize", size=(224, 224))],
            max_epochs=10,
            name="exp",
        )
    )


def test_sets_nested_value():
    cfg = make()
    cfg.merge_from_dict({"optim_wrapper.optimizer.lr": 0.01, "max_epochs": 3})
    assert cfg.optim_wrapper.optimizer.to_dict() == {"type": "SGD", "lr": 0.01, "momentum": 0.9}
    assert cfg.max_epochs == 3


def test_creates_missing_intermediate_dicts():
    cfg = make()
    cfg.merge_from_dict({"a.b.c": 1, "optim_wrapper.clip_grad.max_norm": 5})
    assert cfg.a.b.c == 1
    assert cfg.to_dict()["a"] == {"b": {"c": 1}}
    assert isinstance(cfg.a.b, ConfigDict)
    assert cfg.optim_wrapper.clip_grad.to_dict() == {"max_norm": 5}
    assert cfg.optim_wrapper.optimizer.lr == 0.1


def test_list_index():
    cfg = make()
    cfg.merge_from_dict({"pipeline.0.type": "X", "pipeline.1.size": (32, 32)})
    assert cfg.pipeline[0].to_dict() == {"type": "X"}
    assert cfg.pipeline[1].to_dict() == {"type": "Resize", "size": (32, 32)}


def test_replace_a_whole_list_item():
    cfg = make()
    cfg.merge_from_dict({"pipeline.0": "raw"})
    assert cfg.pipeline[0] == "raw"


def test_list_index_out_of_range():
    cfg = make()
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dict({"pipeline.5.type": "X"})
    message = str(info.value)
    assert message.startswith("pipeline.5.type: ")
    assert "index 5 is out of range" in message
    assert "'pipeline' has 2 item(s)" in message


def test_non_numeric_key_into_list():
    cfg = make()
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dict({"pipeline.type": "X"})
    message = str(info.value)
    assert message.startswith("pipeline.type: ")
    assert "'pipeline' is a list" in message
    assert "by index" in message


def test_list_keys_can_be_disabled():
    cfg = make()
    with pytest.raises(ConfigError, match="'pipeline' is a list"):
        cfg.merge_from_dict({"pipeline.0.type": "X"}, allow_list_keys=False)


def test_dict_value_merges_into_existing_dict():
    cfg = make()
    cfg.merge_from_dict({"optim_wrapper.optimizer": {"lr": 0.5, "nesterov": True}})
    assert cfg.optim_wrapper.optimizer.to_dict() == {"type": "SGD", "lr": 0.5, "momentum": 0.9, "nesterov": True}
    assert isinstance(cfg.optim_wrapper.optimizer, ConfigDict)


def test_dict_value_with_delete_replaces():
    cfg = make()
    cfg.merge_from_dict({"optim_wrapper.optimizer": {"_delete_": True, "type": "Adam"}})
    assert cfg.optim_wrapper.optimizer.to_dict() == {"type": "Adam"}


def test_dict_value_over_scalar_replaces_it():
    cfg = make()
    cfg.merge_from_dict({"name": {"first": "a"}})
    assert cfg.name.first == "a"


def test_descending_into_a_scalar_is_an_error():
    cfg = make()
    with pytest.raises(ConfigError) as info:
        cfg.merge_from_dict({"max_epochs.value": 3})
    message = str(info.value)
    assert message.startswith("max_epochs.value: ")
    assert "'max_epochs' is a int (10)" in message
    assert "has no key 'value'" in message
    assert "override the whole value" in message
    assert cfg.max_epochs == 10


def test_caller_dict_is_not_kept():
    cfg = make()
    value = {"lr": 0.5}
    options = {"optim_wrapper.optimizer": value, "new": {"x": [1]}}
    cfg.merge_from_dict(options)
    value["lr"] = 1.0
    options["new"]["x"].append(2)
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert options == {"optim_wrapper.optimizer": {"lr": 1.0}, "new": {"x": [1, 2]}}


def test_caller_list_is_copied():
    cfg = make()
    sizes = [1, 2]
    cfg.merge_from_dict({"sizes": sizes, "pipeline.1.size": sizes})
    sizes.append(3)
    assert cfg.sizes == [1, 2]
    assert cfg.pipeline[1].size == [1, 2]
