"""The one test on torch.compile's default backend, inductor (its first compile takes tens of
seconds on a small CPU): the digits MLP trains compiled, as accurately as eager, and inductor's
files stay in the work dir."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Five epochs; every training batch the same shape, so inductor compiles one graph (a short
# last batch would compile a second, dynamic one).
OVERRIDES = ["train_dataloader.drop_last=True", "train_cfg.max_epochs=5"]


def _run(tool: str, args: list[str], tmp: Path) -> str:
    tmp.mkdir()
    # A private TMPDIR shows whatever a run would write to /tmp/torchinductor_<user>.
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    env.pop("TRITON_CACHE_DIR", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / tool), str(REPO / "configs" / "digits_mlp.py"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _accuracy(log: str, mode: str) -> float:
    found = re.findall(rf"Epoch\({mode}\) (?:\[\d+\])?\[\d+/\d+\]\s+accuracy/top1: ([\d.]+)", log)
    assert found, log[-3000:]
    return float(found[-1])


@pytest.mark.slow
@pytest.mark.timeout(900)  # two trainings and an inductor compile: minutes on a loaded 2-core machine
def test_digits_mlp_compiled_with_inductor_trains_as_well_as_eager(tmp_path):
    eager = _run("train.py", ["--work-dir", str(tmp_path / "eager"), "--cfg-options", *OVERRIDES], tmp_path / "t1")
    # Trained compiled, without validation (a second graph, as long to compile again) ...
    compiled = _run(
        "train.py",
        ["--work-dir", str(tmp_path / "compiled"), "--cfg-options", *OVERRIDES, "train_cfg.val_interval=6", "compile=True"],
        tmp_path / "t2",
    )
    # ... then validated like the eager run (the val and test sets are the same).
    tested = _run(
        "test.py", [str(tmp_path / "compiled" / "epoch_5.pth"), "--work-dir", str(tmp_path / "test")], tmp_path / "t3"
    )

    assert _accuracy(eager, "val") > 90.0
    assert abs(_accuracy(tested, "test") - _accuracy(eager, "val")) <= 1.0
    # Dynamo captured the forward, inductor built it, and the report and the warm-up were logged.
    assert re.search(r"torch\.compile: compiling took [\d.]+ s of iteration 1's", compiled)
    frames = re.findall(r"torch\.compile, by iteration 44: (\d+) frame\(s\) compiled, 0 graph break\(s\), 0 recompile", compiled)
    assert frames and int(frames[0]) > 0
    cache = tmp_path / "compiled" / "compile_cache"
    assert any(path.suffix == ".so" for path in cache.rglob("*")), "inductor built nothing"
    assert not list((tmp_path / "t2").glob("torchinductor_*"))
    assert not (tmp_path / "eager" / "compile_cache").exists()
