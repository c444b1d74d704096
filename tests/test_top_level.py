"""The top-level package: cheap to import, and MMEngine's top-level names on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import minirunner


@pytest.mark.slow
def test_importing_the_package_imports_no_torch():
    code = "import sys, minirunner; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(
    "name, module",
    [
        ("Config", "minirunner.config"),
        ("ConfigDict", "minirunner.config"),
        ("DictAction", "minirunner.config"),
        ("read_base", "minirunner.config"),
        ("MODELS", "minirunner.registry"),
        ("Registry", "minirunner.registry"),
        ("DefaultScope", "minirunner.registry"),
        ("init_default_scope", "minirunner.registry"),
        ("MMLogger", "minirunner.logging"),
        ("MessageHub", "minirunner.logging"),
        ("print_log", "minirunner.logging"),
        ("ManagerMixin", "minirunner.utils"),
    ],
)
def test_mmengine_top_level_names_are_the_subpackages_objects(name, module):
    import importlib

    assert getattr(minirunner, name) is getattr(importlib.import_module(module), name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        minirunner.no_such_name  # noqa: B018 (the lookup is the test)


@pytest.mark.slow
def test_importing_the_runner_prints_no_numpy_warning():
    result = subprocess.run([sys.executable, "-c", "import minirunner.runner"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Failed to initialize NumPy" not in result.stderr
