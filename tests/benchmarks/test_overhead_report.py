"""benchmarks/overhead.py's --instructions report: per-iteration figures are the difference
between the runs of two lengths divided by the extra iterations, for instructions,
estimated cycles and (with --branches) mispredicted branches, each also as a ratio to the
``layers`` side. Checked on callgrind-format files written here, with figures worked out by
hand, so no valgrind is needed."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
overhead = pytest.importorskip("overhead")

EVENTS = "Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim"


def _write_run(path: Path, ir: int, l1: int, last_level: int, mispredicted: int) -> None:
    # Misses go to I1mr/ILmr, mispredictions half to conditional, half to indirect branches.
    values = [ir, 0, 0, l1, 0, 0, last_level, 0, 0, 0, mispredicted // 2, 0, mispredicted - mispredicted // 2]
    path.write_text(f"version: 1\ncreator: test\nevents: {EVENTS}\nsummary: {' '.join(map(str, values))}\n")


@pytest.fixture()
def callgrind_folder(tmp_path):
    iterations = (overhead.LONG - overhead.SHORT) * (overhead.SAMPLES // overhead.BATCH)
    labels = ["warm-up", "plain/runner/1", "plain/runner/2", "warm-up", "plain/layers/1", "plain/layers/2"]
    # Per iteration: runner 1100 Ir, 2 L1 misses, 1 last-level miss, 30 mispredictions;
    # layers 1000 Ir, 1 L1 miss, 1 last-level miss, 20 mispredictions. Start-up differs.
    runs = {
        1: (999, 0, 0, 0),
        2: (50_000, 10, 1, 100), 3: (50_000 + 1100 * iterations, 10 + 2 * iterations, 1 + iterations, 100 + 30 * iterations),
        4: (999, 0, 0, 0),
        5: (20_000, 5, 0, 70), 6: (20_000 + 1000 * iterations, 5 + iterations, iterations, 70 + 20 * iterations),
    }
    for part, (ir, l1, last_level, mispredicted) in runs.items():
        _write_run(tmp_path / f"callgrind.out.{part}", ir, l1, last_level, mispredicted)
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    return tmp_path


def _rows(text: str) -> dict[str, list[float]]:
    return {
        match.group(1): [float(value) for value in match.group(2).split()]
        for match in re.finditer(r"^plain +(runner|layers) +(.*)$", text, re.M)
    }


def test_per_iteration_figures_and_ratios_with_branches(callgrind_folder, capsys):
    overhead.report(str(callgrind_folder), ["plain"], ["runner", "layers"], branches=True)
    rows = _rows(capsys.readouterr().out)
    # est. cycles = Ir + 10 x L1 misses + 100 x last-level misses
    assert rows["runner"] == pytest.approx([1100, 1100 + 20 + 100, 30, 1.1, 1220 / 1110, 1.5], abs=1e-3)
    assert rows["layers"] == pytest.approx([1000, 1000 + 10 + 100, 20, 1.0, 1.0, 1.0])


def test_without_branches_the_mispredictions_are_not_reported(callgrind_folder, capsys):
    overhead.report(str(callgrind_folder), ["plain"], ["runner", "layers"], branches=False)
    out = capsys.readouterr().out
    assert "mispredicts" not in out
    assert _rows(out)["runner"] == pytest.approx([1100, 1220, 1.1, 1220 / 1110], abs=1e-3)
