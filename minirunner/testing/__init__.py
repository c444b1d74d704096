"""Helpers for testing code written on minirunner: :class:`RunnerTestCase` (a unittest case
with a temporary work dir and two small runner configs) and the comparison helpers MMEngine
exports from ``mmengine.testing``."""

from .compare import (
    assert_allclose,
    assert_attrs_equal,
    assert_dict_contains_subset,
    assert_dict_has_keys,
    assert_is_norm_layer,
    assert_keys_equal,
    assert_params_all_zeros,
    check_python_script,
)
from .runner_test_case import RunnerTestCase, ToyDataset, ToyMetric, ToyModel

__all__ = [
    "RunnerTestCase", "ToyDataset", "ToyMetric", "ToyModel", "assert_allclose", "assert_attrs_equal",
    "assert_dict_contains_subset", "assert_dict_has_keys", "assert_is_norm_layer", "assert_keys_equal",
    "assert_params_all_zeros", "check_python_script",
]
