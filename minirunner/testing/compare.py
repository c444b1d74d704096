"""Comparison helpers with MMEngine's names and return values (``mmengine.testing``), on torch
alone (no NumPy).

``assert_allclose`` raises an ``AssertionError`` like torch's own; the others return True or
False so a test writes ``assert assert_dict_has_keys(result, ['loss'])``, as in MMEngine.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping
from runpy import run_path
from typing import Any, Callable
from unittest.mock import patch

import torch
from torch import nn

# The layers MMEngine counts as normalisation layers (its _BatchNorm covers SyncBatchNorm).
_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def assert_allclose(
    actual: Any,
    expected: Any,
    rtol: float | None = None,
    atol: float | None = None,
    equal_nan: bool = True,
    msg: str | Callable[[str], str] | None = "",
) -> None:
    """Assert that ``actual`` and ``expected`` (tensors, numbers or nested lists of them)
    are close: ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Dtypes need not match (``expected`` is compared in ``actual``'s dtype when it is not a
    tensor); ``rtol`` and ``atol`` are given together or default by dtype (float32:
    1.3e-6 and 1e-5). NaNs compare equal unless ``equal_nan=False``.

    Raises:
        AssertionError: when they are not close (``msg`` replaces the message when given).
    """
    if not isinstance(actual, torch.Tensor):
        actual = torch.tensor(actual)
    if not isinstance(expected, torch.Tensor):
        expected = torch.tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(
        actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan,
        check_device=True, check_dtype=False, check_stride=False, msg=msg or None,
    )


def _differs(value: Any, expected: Any) -> bool:
    """True when two values differ; tensors are compared by shape and content."""
    if isinstance(value, torch.Tensor) or isinstance(expected, torch.Tensor):
        try:
            value, expected = torch.as_tensor(value), torch.as_tensor(expected)
        except (TypeError, ValueError, RuntimeError):
            return True
        return value.shape != expected.shape or not torch.equal(value.to(expected.dtype), expected)
    result = value != expected
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes)):
        return any(result)
    return bool(result)


def assert_dict_contains_subset(dict_obj: Mapping, expected_subset: Mapping) -> bool:
    """Whether ``dict_obj`` has every key of ``expected_subset`` with an equal value."""
    return all(key in dict_obj and not _differs(dict_obj[key], value) for key, value in expected_subset.items())


def assert_attrs_equal(obj: Any, expected_attrs: Mapping[str, Any]) -> bool:
    """Whether ``obj`` has every attribute of ``expected_attrs`` with an equal value."""
    return all(hasattr(obj, name) and not _differs(getattr(obj, name), value) for name, value in expected_attrs.items())


def assert_dict_has_keys(obj: Mapping, expected_keys: Iterable[str]) -> bool:
    """Whether every key of ``expected_keys`` is in ``obj``."""
    return set(expected_keys).issubset(obj.keys())


def assert_keys_equal(result_keys: Iterable[str], target_keys: Iterable[str]) -> bool:
    """Whether the two collections hold the same keys (order and repeats ignored)."""
    return set(result_keys) == set(target_keys)


def assert_is_norm_layer(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm (SyncBatchNorm included), InstanceNorm, GroupNorm or
    LayerNorm layer."""
    return isinstance(module, _NORM_LAYERS)


def assert_params_all_zeros(module: nn.Module) -> bool:
    """Whether ``module.weight`` (and ``module.bias``, when it has one) are all zero."""
    weight = module.weight.data
    if not torch.allclose(weight, torch.zeros_like(weight)):
        return False
    bias = getattr(module, "bias", None)
    return bias is None or torch.allclose(bias.data, torch.zeros_like(bias.data))


def check_python_script(cmd: str) -> None:
    """Run a Python script in this process as ``__main__`` with the arguments of ``cmd``
    (``'python tools/x.py --flag'`` or ``'tools/x.py --flag'``), so coverage tools see it."""
    args = shlex.split(cmd)
    if args and args[0] == "python":
        args = args[1:]
    with patch.object(sys, "argv", args):
        run_path(args[0], run_name="__main__")
