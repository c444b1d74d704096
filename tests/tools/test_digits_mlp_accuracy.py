"""`make train`'s default config reaches at least 95% validation accuracy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_digits_mlp_reaches_95_percent(tmp_path):
    work = tmp_path / "work"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), str(REPO / "configs" / "digits_mlp.py"),
         "--work-dir", str(work)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    accuracies = [float(a) for a in re.findall(r"Epoch\(val\) \[20\]\[\d+/\d+\]\s+accuracy/top1: ([\d.]+)", result.stdout)]
    assert accuracies, result.stdout[-3000:]
    assert accuracies[-1] >= 95.0
    # The run says where its log and checkpoints are.
    assert re.search(r"done\. log: .*; checkpoints and config: " + re.escape(str(work)), result.stdout)
    assert (work / "epoch_20.pth").is_file()
