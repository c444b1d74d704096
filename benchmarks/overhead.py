"""How much slower (or faster) the Runner is than a hand-written PyTorch loop doing the same work.

Work (issue 6): an MLP 32->64->10 on 8,192 in-memory samples, batch 64, SGD with momentum,
logging every 50 iterations. Three sides run it:

- ``runner``: the Runner with its default hooks (the checkpoint hook left out: saving is not
  per-iteration work), fetching each batch with the dataset's ``__getitems__``.
- ``layers``: a hand-written loop that fetches data the same way and calls the model's layers
  and ``F.cross_entropy`` directly, skipping even the model's ``forward``: the bar the Runner
  is held to (runner/layers).
- ``naive``: the loop most people write, ``DataLoader(dataset, batch_size, shuffle=True)``
  fetching one sample at a time and collating them, calling ``model(..., mode='loss')``
  (runner/naive: below 1 means the Runner is faster).

Case 'plain' is the above. Case 'features' adds gradient accumulation (2), clipping by norm
and a linear warm-up followed by cosine annealing, on every side. Case 'default' runs the
Runner with its default hooks exactly as a config leaves them (a log line every 10
iterations, a checkpoint every epoch); the loops log every 10 iterations and save nothing.

Every run of every side starts right after a full garbage collection, so no side pays for
the garbage of the one before it (under callgrind, each run's own garbage is collected
inside its counts).

Two modes:

- wall time (the default): the sides alternate in one process (naive, runner, layers, then
  the other way round) so machine load hits every side alike; the median of the ratios of
  many pairs (21) is the figure to read, as single runs on a shared machine vary by 20% and
  more. The process pins itself to one core (``--no-pin`` turns that off).
- ``--instructions``: the same loops under valgrind's callgrind with its cache simulation,
  each side at two run lengths (1 and 2 epochs); the difference divided by the extra
  iterations is the cost of one iteration, with start-up and warm-up cancelled out. It prints
  instructions (Ir) and estimated cycles (Ir + 10 x L1 misses + 100 x last-level misses)
  per iteration. The counts are deterministic, so one run is enough; it takes a few minutes.
  ``--keep DIR`` keeps callgrind's files (one per run) for ``callgrind_annotate``.
  ``--branches`` also simulates branch prediction (about twice as slow) and prints the
  mispredicted branches per iteration. Interpreted Python mispredicts about three times as
  often per instruction as torch's own code, so a gap in Python work shows more in wall
  time than in instructions (see docs/performance.md).

    python benchmarks/overhead.py [--repeats 21] [--cases plain features default] [--no-pin]
    python benchmarks/overhead.py --instructions [--cases ...] [--sides runner layers naive] [--keep DIR] [--branches]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import minirunner  # noqa: F401  (first: it quiets torch's NumPy warning on the CPU wheel)
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from minirunner.dataset import SyntheticClassification, default_collate
from minirunner.model import MLPClassifier
from minirunner.runner import Runner

try:  # the pass-through collate for datasets with __getitems__ (absent before issue 19)
    from minirunner.dataset import collate_batched
except ImportError:
    collate_batched = None

EPOCHS, BATCH, SAMPLES = 4, 64, 8192
LR, MOMENTUM, ACCUMULATE, MAX_NORM, WARMUP = 0.05, 0.9, 2, 1.0, 20
LOG_INTERVAL = {"plain": 50, "features": 50, "default": 10}
SIDES = ("naive", "runner", "layers")
SHORT, LONG = 1, 2  # run lengths in epochs for --instructions
MARKER = "os_getppid"  # a C function each run boundary calls; callgrind dumps its counts there


class PerSample(Dataset):
    """The dataset seen one sample at a time (no ``__getitems__``), as most datasets are."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]


def make_dataset(samples: int = SAMPLES) -> SyntheticClassification:
    return SyntheticClassification(num_samples=samples, num_features=32, num_classes=10, seed=0)


def hand_loop(dataset: Dataset, case: str, epochs: int, side: str) -> float:
    """A hand-written loop (side 'naive' or 'layers'); returns its wall time in seconds."""
    torch.manual_seed(0)
    model = MLPClassifier(in_features=32, hidden_dims=(64,), num_classes=10)
    net = model.net
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    if side == "naive":
        loader = DataLoader(PerSample(dataset), batch_size=BATCH, shuffle=True)
    else:  # the same fetch as the Runner's loader
        batched = collate_batched is not None and hasattr(dataset, "__getitems__")
        collate = collate_batched if batched else default_collate
        loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, collate_fn=collate)
    features = case == "features"
    interval = LOG_INTERVAL[case]
    max_iters = epochs * len(loader)
    logger = logging.getLogger("hand-loop")
    start = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        for batch in loader:
            if side == "layers":
                loss = F.cross_entropy(net(batch["inputs"]), batch["data_samples"])
            else:
                loss = model(batch["inputs"], batch["data_samples"], mode="loss")["loss"]
            if features:
                (loss / ACCUMULATE).backward()
                if (step + 1) % ACCUMULATE == 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
                    optimizer.step()
                    optimizer.zero_grad()
                # Warm-up by iteration, then cosine by iteration over the rest.
                if step < WARMUP:
                    factor = 0.1 + 0.9 * (step + 1) / WARMUP
                else:
                    factor = 0.5 * (1 + math.cos(math.pi * (step + 1 - WARMUP) / (max_iters - WARMUP)))
                for group in optimizer.param_groups:
                    group["lr"] = LR * factor
            else:
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            step += 1
            if step % interval == 0:
                logger.info(f"epoch {epoch} iter {step} loss {loss.item():.4f}")
    return time.perf_counter() - start


def runner_loop(dataset: Dataset, case: str, epochs: int) -> float:
    """The same work through the Runner; returns the wall time of ``train()`` in seconds."""
    optim_wrapper: dict = dict(optimizer=dict(type="SGD", lr=LR, momentum=MOMENTUM))
    param_scheduler = None
    default_hooks: dict | None = dict(logger=dict(interval=LOG_INTERVAL[case]), checkpoint=None)
    if case == "features":
        optim_wrapper.update(accumulative_counts=ACCUMULATE, clip_grad=dict(max_norm=MAX_NORM))
        param_scheduler = [
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=WARMUP),
            dict(type="CosineAnnealingLR", by_epoch=False, begin=WARMUP),
        ]
    elif case == "default":
        default_hooks = None
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=dict(type="MLPClassifier", in_features=32, hidden_dims=(64,), num_classes=10),
            work_dir=work_dir,
            train_dataloader=dict(
                dataset=dataset, batch_size=BATCH, sampler=dict(type="DefaultSampler", shuffle=True),
            ),
            train_cfg=dict(by_epoch=True, max_epochs=epochs),
            optim_wrapper=optim_wrapper,
            param_scheduler=param_scheduler,
            default_hooks=default_hooks,
            randomness=dict(seed=0),
            log_level="WARNING",  # lines are still built at each interval, only not printed
        )
        runner.train_loop  # build the dataloader before timing, as the loops do
        start = time.perf_counter()
        runner.train()
        return time.perf_counter() - start


def fresh_gc(run: Callable[[], float]) -> Callable[[], float]:
    """``run``, started with the garbage collector in the same state whatever ran before.

    Collections are triggered by counts of allocations, so without this a side pays for the
    garbage of the side before it, and a run of one length may hit a full collection that
    the run of the other length escaped (at a cost of millions of instructions).
    """

    def fresh() -> float:
        gc.collect()
        return run()

    return fresh


def sides(dataset: Dataset, case: str, epochs: int) -> dict[str, Callable[[], float]]:
    return {
        "naive": fresh_gc(lambda: hand_loop(dataset, case, epochs, "naive")),
        "runner": fresh_gc(lambda: runner_loop(dataset, case, epochs)),
        "layers": fresh_gc(lambda: hand_loop(dataset, case, epochs, "layers")),
    }


# ---------------------------------------------------------------------------- wall time
def wall_time(cases: list[str], repeats: int, pin: bool) -> None:
    if pin and hasattr(os, "sched_setaffinity"):
        # One core for the whole process: moving between cores mid-run adds noise to every side.
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    dataset = make_dataset()
    print(f"wall time, median of {repeats} interleaved runs of {EPOCHS} epochs each")
    print(
        f"{'case':<9} {'naive (s)':>9} {'runner (s)':>10} {'layers (s)':>10}"
        f" {'runner/layers':>13} {'min..max':>13} {'runner/naive':>12}"
    )
    for case in cases:
        runs = sides(dataset, case, EPOCHS)
        for run in runs.values():  # warm-up of every path
            run()
        times: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        for _ in range(repeats):
            for name in order:
                times[name].append(runs[name]())
            order.reverse()  # neither side goes first always
        to_layers = [r / l for r, l in zip(times["runner"], times["layers"])]
        to_naive = [r / n for r, n in zip(times["runner"], times["naive"])]
        median = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"{case:<9} {median['naive']:>9.3f} {median['runner']:>10.3f} {median['layers']:>10.3f}"
            f" {statistics.median(to_layers):>13.3f} {min(to_layers):>6.3f}..{max(to_layers):.3f}"
            f" {statistics.median(to_naive):>12.3f}"
        )


# ---------------------------------------------------------------------------- instructions
def callgrind_child(cases: list[str], side_names: list[str], manifest: str) -> None:
    """Run under callgrind: each side at both lengths, a marker call after each run."""
    dataset, small = make_dataset(), make_dataset(2 * WARMUP * BATCH)  # longer than the warm-up
    labels = []  # what ran before each marker, in order

    def mark(label: str) -> None:
        # The run's own garbage is collected within its counts, before the boundary.
        gc.collect()
        labels.append(label)
        os.getppid()  # callgrind dumps the counts since the previous marker here

    for case in cases:
        for side in side_names:
            sides(small, case, 1)[side]()  # warm-up: first calls, lazy set-up
            mark("warm-up")
            for epochs in (SHORT, LONG):
                sides(dataset, case, epochs)[side]()
                mark(f"{case}/{side}/{epochs}")
    with open(manifest, "w") as handle:
        json.dump(labels, handle)


def _read_totals(path: str) -> dict[str, int]:
    with open(path) as handle:
        text = handle.read()
    events = re.search(r"^events: (.*)$", text, re.M).group(1).split()
    values = [int(v) for v in re.search(r"^summary: (.*)$", text, re.M).group(1).split()]
    return dict(zip(events, values + [0] * (len(events) - len(values))))


def estimated_cycles(counts: dict[str, int]) -> int:
    """Ir + 10 x L1 misses + 100 x last-level misses (callgrind's usual estimate)."""
    l1 = counts["I1mr"] + counts["D1mr"] + counts["D1mw"]
    last_level = counts["ILmr"] + counts["DLmr"] + counts["DLmw"]
    return counts["Ir"] + 10 * l1 + 100 * last_level


def mispredictions(counts: dict[str, int]) -> int:
    """Mispredicted conditional and indirect branches (``--branch-sim=yes`` events)."""
    return counts["Bcm"] + counts["Bim"]


def per_iteration(short: dict[str, int], long: dict[str, int], iterations: int, branches: bool) -> tuple[float, ...]:
    """(instructions, estimated cycles[, mispredicted branches]) of one iteration: the
    difference between the runs of two lengths, divided by the extra iterations."""
    measures = [lambda counts: counts["Ir"], estimated_cycles] + ([mispredictions] if branches else [])
    return tuple((measure(long) - measure(short)) / iterations for measure in measures)


def instructions(cases: list[str], side_names: list[str], keep: str | None, branches: bool) -> None:
    if shutil.which("valgrind") is None:
        sys.exit(
            "--instructions needs valgrind's callgrind, which is not installed: install it with "
            "your system's package manager (apt-get install valgrind, dnf install valgrind, "
            "brew install valgrind) or use the wall-time mode"
        )
    folder = keep or tempfile.mkdtemp(prefix="overhead-callgrind-")
    os.makedirs(folder, exist_ok=True)
    manifest = os.path.join(folder, "labels.json")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        "valgrind", "--tool=callgrind", "--cache-sim=yes", f"--dump-before={MARKER}",
        "--compress-strings=no",  # each file then names its functions itself (callgrind_annotate)
        f"--callgrind-out-file={os.path.join(folder, 'callgrind.out')}",
        *(["--branch-sim=yes"] if branches else []),
        sys.executable, os.path.abspath(__file__), "--callgrind-child", manifest, "--cases", *cases,
        "--sides", *side_names,
    ]
    print(f"running the loops under callgrind (a few minutes); files in {folder}", flush=True)
    with open(os.path.join(folder, "child.log"), "w") as log:
        if subprocess.run(command, env=env, stdout=log, stderr=log).returncode != 0:
            sys.exit(f"the run under callgrind failed; see {log.name}")
    report(folder, cases, side_names, branches)
    if keep is None:
        shutil.rmtree(folder)


def report(folder: str, cases: list[str], side_names: list[str], branches: bool) -> None:
    """Print the per-iteration figures of the callgrind files in ``folder``."""
    with open(os.path.join(folder, "labels.json")) as handle:
        labels = json.load(handle)
    runs = {label: _read_totals(os.path.join(folder, f"callgrind.out.{part}"))
            for part, label in enumerate(labels, start=1) if label != "warm-up"}
    iterations = (LONG - SHORT) * (SAMPLES // BATCH)
    print(f"per iteration: (cost of {LONG} epochs - cost of {SHORT}) / {iterations} iterations")
    print(
        f"{'case':<9} {'side':<7} {'instructions':>12} {'est. cycles':>12}"
        + (f" {'mispredicts':>12}" if branches else "")
        + f" {'Ir vs layers':>12} {'cycles vs layers':>16}"
        + (f" {'mispredicts vs layers':>21}" if branches else "")
    )
    widths = (12, 16, 21)  # of the ratio columns, as in the header
    for case in cases:
        per_iter = {
            side: per_iteration(runs[f"{case}/{side}/{SHORT}"], runs[f"{case}/{side}/{LONG}"], iterations, branches)
            for side in side_names
        }
        base = per_iter["layers"]
        for side in side_names:
            figures = per_iter[side]
            counts = "".join(f" {value:>12.0f}" for value in figures)
            ratios = [value / base_value for value, base_value in zip(figures, base)]
            print(f"{case:<9} {side:<7}{counts}" + "".join(f" {r:>{w}.3f}" for r, w in zip(ratios, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description="Runner overhead against hand-written loops.")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the process to one core")
    parser.add_argument("--cases", nargs="+", default=["plain", "features"], choices=list(LOG_INTERVAL))
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--keep", metavar="DIR", help="with --instructions: keep callgrind's files in DIR")
    parser.add_argument(
        "--branches", action="store_true",
        help="with --instructions: also count mispredicted branches (slower)",
    )
    parser.add_argument(
        "--sides", nargs="+", default=["runner", "layers"], choices=SIDES,
        help="with --instructions: the sides to count (naive is slow under callgrind)",
    )
    parser.add_argument("--callgrind-child", metavar="MANIFEST", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier figures; every side runs with the same setting
    logging.getLogger("hand-loop").setLevel(logging.WARNING)
    if args.callgrind_child:
        callgrind_child(args.cases, args.sides, args.callgrind_child)
    elif args.instructions:
        instructions(args.cases, sorted(set(args.sides) | {"layers"}, key=SIDES.index), args.keep, args.branches)
    else:
        wall_time(args.cases, args.repeats, args.pin)


if __name__ == "__main__":
    main()
