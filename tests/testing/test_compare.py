"""The comparison helpers of minirunner.testing, as MMEngine documents them: assert_allclose
raises, the others return True or False."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn

from minirunner.testing import (
    assert_allclose,
    assert_attrs_equal,
    assert_dict_contains_subset,
    assert_dict_has_keys,
    assert_is_norm_layer,
    assert_keys_equal,
    assert_params_all_zeros,
    check_python_script,
)


def test_assert_allclose_passes_within_tolerance_and_across_dtypes():
    assert_allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    assert_allclose(torch.tensor([1.0, 2.0]), [1.0, 2.0])  # expected as a list
    assert_allclose(torch.tensor([1, 2]), torch.tensor([1.0, 2.0], dtype=torch.float64))  # dtypes differ
    assert_allclose(1.0, 1.05, rtol=0.0, atol=0.1)
    assert_allclose(torch.tensor([math.nan]), torch.tensor([math.nan]))  # equal_nan=True by default


def test_assert_allclose_raises():
    with pytest.raises(AssertionError):
        assert_allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]))
    with pytest.raises(AssertionError):
        assert_allclose(torch.tensor([math.nan]), torch.tensor([math.nan]), equal_nan=False)
    with pytest.raises(AssertionError, match="custom message"):
        assert_allclose(torch.tensor(1.0), torch.tensor(2.0), msg="custom message")


def test_assert_dict_contains_subset():
    obj = {"a": "test1", "b": 2, "c": (4, 6), "t": torch.tensor([1.0, 2.0])}
    assert assert_dict_contains_subset(obj, {"a": "test1", "b": 2, "c": (4, 6)})
    assert assert_dict_contains_subset(obj, {"t": torch.tensor([1.0, 2.0])})
    assert not assert_dict_contains_subset(obj, {"c": (6, 4)})
    assert not assert_dict_contains_subset(obj, {"c": None})
    assert not assert_dict_contains_subset(obj, {"a": "test2"})
    assert not assert_dict_contains_subset(obj, {"d": 1})
    assert not assert_dict_contains_subset(obj, {"t": torch.tensor([1.0, 3.0])})
    assert not assert_dict_contains_subset(obj, {"t": torch.tensor([1.0, 2.0, 3.0])})


def test_assert_attrs_equal():
    class Example:
        a, b, c = 1, ("wvi", 3), [4.5, 3.14]

    assert assert_attrs_equal(Example, {"a": 1, "b": ("wvi", 3), "c": [4.5, 3.14]})
    assert not assert_attrs_equal(Example, {"a": 2})
    assert not assert_attrs_equal(Example, {"c": [4.5, 3.15]})
    assert not assert_attrs_equal(Example, {"missing": 1})


def test_assert_dict_has_keys_and_keys_equal():
    assert assert_dict_has_keys({"a": 1, "b": 2}, ["a"])
    assert not assert_dict_has_keys({"a": 1}, ["a", "b"])
    assert assert_keys_equal(["a", "b"], ["b", "a"])
    assert not assert_keys_equal(["a", "b"], ["a"])


@pytest.mark.parametrize(
    "layer, expected",
    [
        (nn.BatchNorm2d(4), True), (nn.SyncBatchNorm(4), True), (nn.InstanceNorm2d(4), True),
        (nn.GroupNorm(2, 4), True), (nn.LayerNorm(4), True), (nn.Conv2d(4, 4, 1), False), (nn.Linear(2, 2), False),
    ],
)
def test_assert_is_norm_layer(layer, expected):
    assert assert_is_norm_layer(layer) is expected


def test_assert_params_all_zeros():
    layer = nn.Linear(3, 2)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    assert assert_params_all_zeros(layer)
    nn.init.ones_(layer.bias)
    assert not assert_params_all_zeros(layer)
    no_bias = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.zeros_(no_bias.weight)
    assert assert_params_all_zeros(no_bias)


def test_check_python_script_runs_as_main_with_arguments(tmp_path):
    script = tmp_path / "hello.py"
    out = tmp_path / "out.txt"
    script.write_text("import sys\nif __name__ == '__main__':\n    open(sys.argv[2], 'w').write(sys.argv[1])\n")
    check_python_script(f"python {script} zz {out}")
    assert out.read_text() == "zz"
    argv = list(sys.argv)
    check_python_script(f"{script} yy {out}")
    assert out.read_text() == "yy" and sys.argv == argv
