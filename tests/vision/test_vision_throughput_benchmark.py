"""benchmarks/vision_throughput.py trains the shipped CIFAR-10 config with each worker count it is
given and prints images per second measured over real iterations, leaving nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]  # a subprocess training ResNet-18


def test_prints_images_per_second_for_each_worker_count(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "vision_throughput.py"), "--fp32", "--batch", "2",
               "--warmup", "1", "--iters", "2", "--workers", "0", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    speeds = re.findall(r"^num_workers=(\d+): ([\d.]+) images/s$", done.stdout, re.MULTILINE)
    assert [workers for workers, _ in speeds] == ["0", "2"]
    assert all(float(speed) > 0 for _, speed in speeds)
    assert "float32" in done.stdout
    assert list(tmp_path.iterdir()) == []  # data and work dirs live in a temporary folder
