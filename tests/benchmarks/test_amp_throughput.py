"""benchmarks/amp_throughput.py runs end to end (on a CPU: bfloat16, a tiny network) and the
Runner's side really trains with AMP: the figures it prints come from real runs of both sides."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_both_sides_run_and_the_median_ratio_is_printed(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "amp_throughput.py"), "--dtypes", "bfloat16",
               "--width", "4", "--image", "16", "--batch", "4", "--samples", "16", "--warmup", "2",
               "--iters", "3", "--rounds", "2", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rounds = re.findall(r"runner +([\d.]+) img/s +loop +([\d.]+) img/s +ratio ([\d.]+)", done.stdout)
    assert len(rounds) == 2 and all(float(r) > 0 and float(l) > 0 for r, l, _ in rounds)
    assert re.search(r"bfloat16: runner/loop median [\d.]+ \(range", done.stdout)
    assert list(tmp_path.iterdir()) == []  # its runs live in a temporary folder


@pytest.mark.skipif(torch.cuda.is_available(), reason="float16 runs where CUDA is")
def test_float16_on_a_cpu_is_refused_with_the_way_out():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "amp_throughput.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--dtypes bfloat16" in done.stderr
