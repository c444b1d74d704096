"""The tracker tests' skip (or failure) without the trackers environment, and their MLflow
server fixtures; helpers they import are in ``tracker_support.py`` beside this file.

Tests marked ``trackers`` need mlflow, wandb and tensorboard, which only ``make test-trackers``
installs (in ``.venv-trackers``). Elsewhere they are skipped; there (``MINIRUNNER_TRACKERS_ENV=1``)
a missing package fails the run instead.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # for `import tracker_support`

from tracker_support import MlflowServer  # noqa: E402

_PACKAGES = ("mlflow", "wandb", "tensorboard")


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("trackers")]
    missing = [name for name in _PACKAGES if importlib.util.find_spec(name) is None] if marked else []
    if not missing:
        return
    if os.environ.get("MINIRUNNER_TRACKERS_ENV") == "1":
        raise pytest.UsageError(f"the trackers environment lacks {', '.join(missing)}: rebuild it with `make test-trackers`")
    skip = pytest.mark.skip(reason=f"{', '.join(missing)} not installed: run `make test-trackers`")
    for item in marked:
        item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # pytest reports a skip at each test's line; one location folds them into one line.
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[2].endswith("`make test-trackers`"):
        report.longrepr = (__file__, None, report.longrepr[2])
    return report


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """One MLflow tracking server for the module's tests."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_mlflow_server(tmp_path):
    """A server of this test alone (it stops and starts it)."""
    server = MlflowServer(tmp_path)
    server.start()
    yield server
    server.stop()
