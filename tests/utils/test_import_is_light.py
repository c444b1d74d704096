"""Importing the core packages does not pull in optional extras or NumPy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ["numpy", "rich", "tqdm", "yaml", "matplotlib", "tensorboard", "torchvision"]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch  # allowed; anything torch itself imports is not minirunner's doing
    with_torch = set(sys.modules)
    import minirunner, minirunner.config, minirunner.registry, minirunner.logging
    heavy = {heavy!r}

    def loaded(names):
        return sorted(n for n in names if n.split('.')[0] in heavy)

    print(json.dumps(dict(total=loaded(sys.modules), new=loaded(set(sys.modules) - with_torch))))
    """
)


@pytest.mark.slow
def test_core_import_does_not_load_optional_packages():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["new"] == [], f"importing minirunner loaded {loaded['new']}"
    # torch itself may import some of them (this torch imports tqdm, and NumPy when installed);
    # the check above is what minirunner controls. The rest must not be there at all.
    assert [n for n in loaded["total"] if n.split(".")[0] not in ("numpy", "tqdm")] == []
