"""Config.dump, pretty_text, text, filename, to_dict, pickling and copying."""

from __future__ import annotations

import copy
import json
import math
import pickle

import pytest
import torch

from minirunner.config import Config, ConfigDict, ConfigError
from minirunner.registry import OPTIMIZERS


def rich_values() -> dict:
    return dict(
        model=dict(
            type="MLP",
            layers=[dict(type="Linear", in_features=i, out_features=2 * i, bias=i % 2 == 0) for i in range(5)],
            init=dict(type="normal", std=0.02, groups=[("conv", 1.0), ("fc", 0.5)]),
        ),
        weird_keys={"a-b": 1, 3: "three", "class": (1,), "with space": [None], "ok": {"x.y": 2}},
        long_weird={f"key-{i}": [i, i + 0.5, "text" * 3] for i in range(6)},
        lr=0.1,
        big=float("inf"),
        small=float("-inf"),
        tiny=1e-12,
        nothing=None,
        flags=(True, False),
        count=0,
        one=(1,),
        empty_list=[],
        empty_tuple=(),
        empty_dict={},
        # Not `text`: that name is reserved for Config.text, as in MMEngine.
        quoted_text="it's \"quoted\"\nsecond line \u00e9",
        long_list=list(range(50)),
        long_text="word " * 40,
        nested=[[1, [2, (3, 4)]], {"k": [dict(a=1)]}],
    )


def same_types(a, b) -> bool:
    """True if a and b are equal and every leaf has the same type (True is not 1)."""
    if type(a) is not type(b) and not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b))
    return a == b


def test_dump_py_loads_back_equal(tmp_path):
    cfg = Config(rich_values())
    path = tmp_path / "out" / "dumped.py"
    assert cfg.dump(path) is None
    loaded = Config.fromfile(path)
    assert loaded == cfg
    assert same_types(loaded.to_dict(), rich_values())
    assert loaded.big == math.inf and loaded.small == -math.inf
    assert loaded.one == (1,) and isinstance(loaded.one, tuple)


def test_dump_py_of_loaded_file_round_trips(tmp_path):
    (tmp_path / "base.py").write_text("model = dict(type='MLP', hidden=64)\nlr = 0.1\n", encoding="utf-8")
    (tmp_path / "child.py").write_text(
        "_base_ = 'base.py'\nmodel = dict(hidden=8, sizes=(1, 2))\nlr = _base_.lr / 10\n", encoding="utf-8"
    )
    cfg = Config.fromfile(tmp_path / "child.py")
    cfg.dump(tmp_path / "dumped.py")
    loaded = Config.fromfile(tmp_path / "dumped.py")
    assert loaded.to_dict() == {"model": {"type": "MLP", "hidden": 8, "sizes": (1, 2)}, "lr": pytest.approx(0.01)}
    assert "_base_" not in (tmp_path / "dumped.py").read_text()


def test_nan_round_trips(tmp_path):
    Config(dict(x=float("nan"))).dump(tmp_path / "nan.py")
    assert math.isnan(Config.fromfile(tmp_path / "nan.py").x)


def test_pretty_text_wraps_long_values_within_width():
    cfg = Config(rich_values())
    text = cfg.pretty_text
    # Short values stay on one line; long ones wrap, each line within 88 characters
    # unless a single scalar is longer than that.
    assert "lr = 0.1\n" in text
    assert "flags = (True, False)\n" in text
    assert "one = (1,)\n" in text
    assert "big = float('inf')\n" in text
    assert "model = dict(\n" in text
    assert "long_list = [\n" in text
    for line in text.splitlines():
        if "word word" not in line:
            assert len(line) <= 88, line
    # What pretty_text shows is valid Python that evaluates to the config.
    namespace: dict = {}
    exec(compile(text, "<pretty>", "exec"), namespace)
    assert namespace["model"] == cfg.to_dict()["model"]
    assert namespace["long_weird"] == cfg.to_dict()["long_weird"]


def test_dump_without_file_returns_pretty_text():
    cfg = Config(dict(a=1, b=dict(c=[1, 2])))
    assert cfg.dump() == cfg.pretty_text == "a = 1\nb = dict(c=[1, 2])\n"


def test_top_level_key_that_is_not_a_name_cannot_be_dumped_to_py(tmp_path):
    cfg = Config({"a-b": 1})
    with pytest.raises(ConfigError, match=r"top-level key 'a-b' cannot be written to a \.py config.*dump to \.json"):
        cfg.dump(tmp_path / "x.py")


def test_dump_json_loads_back_with_tuples_as_lists(tmp_path):
    values = dict(model=dict(type="MLP", sizes=(1, 2), layers=[dict(k=(3, 4))]), lr=0.1, flag=True, none=None)
    cfg = Config(values)
    path = tmp_path / "out.json"
    cfg.dump(path)
    expected = dict(model=dict(type="MLP", sizes=[1, 2], layers=[dict(k=[3, 4])]), lr=0.1, flag=True, none=None)
    assert json.loads(path.read_text()) == expected
    loaded = Config.fromfile(path)
    assert loaded.to_dict() == expected
    assert isinstance(loaded.model.sizes, list)


def test_dump_yaml_loads_back(tmp_path):
    cfg = Config(dict(model=dict(type="MLP", sizes=(1, 2)), lr=0.1, names=["a", "b"]))
    cfg.dump(tmp_path / "out.yaml")
    assert Config.fromfile(tmp_path / "out.yaml").to_dict() == dict(
        model=dict(type="MLP", sizes=[1, 2]), lr=0.1, names=["a", "b"]
    )


def test_dump_class_value_writes_its_import_path(tmp_path):
    cfg = Config(dict(optimizer=dict(type=torch.optim.SGD, lr=0.1)))
    cfg.dump(tmp_path / "cls.json")
    cfg.dump(tmp_path / "cls.py")
    from_json = json.loads((tmp_path / "cls.json").read_text())
    from_py = Config.fromfile(tmp_path / "cls.py")
    assert from_json["optimizer"]["type"] == from_py.optimizer.type
    # The path resolves back to the class through a registry.
    assert OPTIMIZERS.get(from_py.optimizer.type) is torch.optim.SGD


def test_dump_unknown_suffix(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot dump a config to '.*x\.txt': use a \.py, \.json or \.yaml"):
        Config(dict(a=1)).dump(tmp_path / "x.txt")


def test_dump_unwritable_value_names_the_key(tmp_path):
    cfg = Config(dict(model=dict(weights=object())))
    with pytest.raises(ConfigError) as info:
        cfg.dump(tmp_path / "x.json")
    assert str(info.value).startswith("model.weights: object values cannot be written")


def test_filename_and_text(tmp_path):
    base = tmp_path / "base.py"
    child = tmp_path / "child.py"
    base_source = "model = dict(type='MLP')  # from the base\n"
    child_source = "_base_ = 'base.py'\nlr = 0.5  # from the child\n"
    base.write_text(base_source, encoding="utf-8")
    child.write_text(child_source, encoding="utf-8")
    cfg = Config.fromfile(child)
    assert cfg.filename == str(child)
    assert base_source in cfg.text
    assert child_source in cfg.text
    assert f"# {base}" in cfg.text and f"# {child}" in cfg.text
    assert cfg.text.index(base_source) < cfg.text.index(child_source)


def test_config_without_file():
    cfg = Config(dict(a=1))
    assert cfg.filename is None
    assert cfg.text == ""
    assert Config().to_dict() == {}
    with pytest.raises(TypeError, match="cfg_dict must be a dict, got list"):
        Config([1, 2])  # type: ignore[arg-type]


def test_to_dict_returns_plain_containers():
    cfg = Config(dict(a=dict(b=[dict(c=1), (dict(d=2),)]), e=1))
    plain = cfg.to_dict()
    assert plain == {"a": {"b": [{"c": 1}, ({"d": 2},)]}, "e": 1}

    def check(value):
        assert not isinstance(value, ConfigDict)
        if isinstance(value, dict):
            assert type(value) is dict
            for item in value.values():
                check(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                check(item)

    check(plain)
    plain["a"]["b"][0]["c"] = 99
    assert cfg.a.b[0].c == 1


def test_constructor_copies_the_callers_dict():
    values = dict(model=dict(sizes=[1, 2]))
    cfg = Config(values)
    values["model"]["sizes"].append(3)
    assert cfg.model.sizes == [1, 2]


def test_pickle_round_trip(tmp_path):
    (tmp_path / "c.py").write_text("model = dict(type='MLP', sizes=(1, 2))\nlr = 0.1\n", encoding="utf-8")
    cfg = Config.fromfile(tmp_path / "c.py")
    restored = pickle.loads(pickle.dumps(cfg))
    assert isinstance(restored, Config)
    assert restored == cfg
    assert restored.filename == cfg.filename
    assert restored.text == cfg.text
    assert restored.model.sizes == (1, 2)
    assert isinstance(restored.model, ConfigDict)


def test_deepcopy_is_independent():
    cfg = Config(dict(model=dict(type="MLP", sizes=[1, 2])), filename="/x/c.py", text="src")
    clone = copy.deepcopy(cfg)
    clone.model.sizes.append(3)
    clone.model.type = "CNN"
    assert cfg.model.to_dict() == {"type": "MLP", "sizes": [1, 2]}
    assert clone.model.to_dict() == {"type": "CNN", "sizes": [1, 2, 3]}
    assert clone.filename == "/x/c.py" and clone.text == "src"


def test_shallow_copy_is_a_new_config():
    cfg = Config(dict(a=1, model=dict(type="MLP")))
    clone = copy.copy(cfg)
    clone.a = 2
    assert cfg.a == 1 and clone.a == 2


def test_mapping_protocol_on_config():
    cfg = Config(dict(a=1))
    cfg.b = dict(c=2)
    cfg["d"] = [dict(e=3)]
    assert isinstance(cfg.b, ConfigDict)
    assert cfg.b.c == 2
    assert cfg.d[0].e == 3
    assert "a" in cfg and "zzz" not in cfg
    assert list(cfg) == ["a", "b", "d"]
    assert len(cfg) == 3
    del cfg.a
    del cfg["b"]
    assert list(cfg) == ["d"]
    assert cfg == {"d": [{"e": 3}]}
    assert "Config (path: None)" in repr(cfg)


def test_missing_key_on_config_lists_keys():
    cfg = Config(dict(optim_wrapper=dict(), max_epochs=1))
    with pytest.raises(AttributeError) as info:
        cfg.optim_wraper
    assert "'optim_wraper'" in str(info.value)
    assert "'max_epochs', 'optim_wrapper'" in str(info.value)
    assert "Did you mean 'optim_wrapper'?" in str(info.value)
    with pytest.raises(KeyError, match="optim_wraper"):
        cfg["optim_wraper"]

