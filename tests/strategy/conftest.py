"""FSDP tests need NumPy (DCP's object collectives call ``tensor.numpy()``), which the default
environment lacks: there they skip, pointing at ``make test-fsdp``; under ``make test-fsdp``
(``MINIRUNNER_REQUIRE_FSDP=1``) a missing NumPy fails them instead."""

from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture(scope="session")
def fsdp_environment() -> None:
    if importlib.util.find_spec("numpy") is None:
        if os.environ.get("MINIRUNNER_REQUIRE_FSDP") == "1":
            pytest.fail("MINIRUNNER_REQUIRE_FSDP=1 but NumPy does not import: the .venv-fsdp environment is broken")
        pytest.skip("FSDP tests need the fsdp extra: run `make test-fsdp`")
