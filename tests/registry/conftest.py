"""Every registry test starts without a default scope and leaves the process-wide
DefaultScope instances as it found them (a Runner made by another test may have set one)."""

from __future__ import annotations

import pytest

from minirunner.registry import DefaultScope


@pytest.fixture(autouse=True)
def no_default_scope():
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
