"""Every test under tests/vision needs torchvision.

In the default environment (the CPU torch wheel, beside which PyPI's torchvision does not
import) they are skipped, reported on one line that names ``make test-vision``. That target
sets ``MINIRUNNER_REQUIRE_VISION=1``: there a torchvision that does not import fails them.
"""

from __future__ import annotations

import importlib
import os

import pytest
from vision_support import SKIP_REASON, TORCHVISION_ERROR


@pytest.fixture(scope="session", autouse=True)
def torchvision():
    """The torchvision module, for tests that use it by name."""
    if TORCHVISION_ERROR is not None:
        if os.environ.get("MINIRUNNER_REQUIRE_VISION") == "1":
            pytest.fail(f"torchvision must import in the vision environment: {TORCHVISION_ERROR}")
        pytest.skip(SKIP_REASON)
    return importlib.import_module("torchvision")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # pytest reports a skip at each test's line; one location folds them into one line.
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith(SKIP_REASON):
        report.longrepr = (__file__, None, report.longrepr[2])
    return report
