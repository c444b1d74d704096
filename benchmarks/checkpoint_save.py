"""What crash-safe saving costs compared with a plain ``torch.save`` of the same state.

    python benchmarks/checkpoint_save.py [--repeats 15] [--large-mb 256] [--folder DIR]

Three ways of writing each state, interleaved (the order rotates every repeat):

- ``torch.save``: the baseline, ``torch.save(state, path)``; the data sits in the page
  cache when it returns.
- ``save (training waits)``: ``save_checkpoint_file(..., background=True)``, as the
  CheckpointHook saves: the time until training continues. The fsync, the rename and the
  folder fsync run on a helper thread.
- ``save (until durable)``: ``save_checkpoint_file(...)``: until the file is fsynced and
  renamed into place.

Corruption detection costs nothing at save time: torch already writes a CRC-32 for every
record, and ``verify_checkpoint`` checks them when loading (its time is shown too).
Before every timed write the previous background work is finished, the destination is
removed (each checkpoint is a new file; overwriting one costs ext4 an extra flush) and
``os.sync()`` flushes the page cache, so each write starts from the same state; none of
this is timed.
Reported: median and interquartile range in milliseconds, and each median over the
``torch.save`` median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402

from minirunner.checkpoint import (  # noqa: E402
    save_checkpoint_file,
    verify_checkpoint,
    wait_for_checkpoint_writes,
)


def small_state() -> dict:
    """A checkpoint like the digits MLP's: weights, momentum buffers, a little metadata."""
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 64)).sum().backward()
    optimizer.step()
    return {
        "meta": {"epoch": 3, "iter": 135, "seed": 0, "cfg": "x" * 2000},
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
    }


def large_state(megabytes: int) -> dict:
    """``megabytes`` of float32 weights in 4 MiB tensors, plus as much optimizer state."""
    count = max(1, megabytes // 8)
    weights = {f"layer{i}.weight": torch.randn(1024, 1024) for i in range(count)}
    moments = {i: {"exp_avg": torch.randn(1024, 1024)} for i in range(count)}
    return {"meta": {"epoch": 1, "iter": 10}, "state_dict": weights, "optimizer": {"state": moments}}


def _plain(state: dict, path: str) -> None:
    torch.save(state, path)


def _background(state: dict, path: str) -> None:
    save_checkpoint_file(state, path, background=True)


def _durable(state: dict, path: str) -> None:
    save_checkpoint_file(state, path)


WAYS = (("torch.save", _plain), ("save (training waits)", _background), ("save (until durable)", _durable))


def measure(state: dict, folder: str, repeats: int) -> dict[str, list[float]]:
    """Seconds per write, by way, interleaved."""
    times: dict[str, list[float]] = {name: [] for name, _ in WAYS}
    for repeat in range(repeats + 1):  # the first round warms up and is dropped
        shift = repeat % len(WAYS)
        for name, write in WAYS[shift:] + WAYS[:shift]:
            wait_for_checkpoint_writes()
            os.sync()
            path = os.path.join(folder, f"bench_{name.split()[0]}_{repeat % 2}.pth")
            if os.path.exists(path):  # each write makes a new file, as epoch_N.pth does
                os.remove(path)
            start = time.perf_counter()
            write(state, path)
            elapsed = time.perf_counter() - start
            if repeat:
                times[name].append(elapsed)
    wait_for_checkpoint_writes()
    return times


def verify_time(folder: str, repeats: int) -> list[float]:
    path = os.path.join(folder, "bench_save_0.pth")
    result = []
    for _ in range(repeats):
        start = time.perf_counter()
        verify_checkpoint(path)
        result.append(time.perf_counter() - start)
    return result


def _summary(values: list[float]) -> tuple[float, float, float]:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return statistics.median(values), quartiles[0], quartiles[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--large-mb", type=int, default=256, help="size of the large state's weights")
    parser.add_argument("--folder", help="where to write (default: a temporary folder under the current one)")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="ckpt_bench_", dir=".")
    os.makedirs(folder, exist_ok=True)
    print(f"torch {torch.__version__}; writing into {os.path.abspath(folder)}; {args.repeats} repeats")
    cases = (("small", small_state(), args.repeats), (f"large ({args.large_mb} MB weights + as much optimizer state)",
             large_state(args.large_mb), max(3, args.repeats // 3)))
    for label, state, repeats in cases:
        times = measure(state, folder, repeats)
        size = os.path.getsize(os.path.join(folder, "bench_save_0.pth"))
        base = statistics.median(times["torch.save"])
        print(f"\n{label}: {size / 1e6:.2f} MB file, {repeats} repeats")
        print(f"  {'way':24s} {'median ms':>10s} {'IQR ms':>17s} {'x torch.save':>13s}")
        for name, values in times.items():
            median, low, high = _summary(values)
            print(f"  {name:24s} {median * 1e3:10.2f} {low * 1e3:8.2f}-{high * 1e3:<8.2f} {median / base:13.2f}")
        median, low, high = _summary(verify_time(folder, repeats))
        print(f"  {'verify on load (CRC-32)':24s} {median * 1e3:10.2f} {low * 1e3:8.2f}-{high * 1e3:<8.2f}")
    for name in os.listdir(folder):
        if name.startswith("bench_"):
            os.remove(os.path.join(folder, name))
    if not args.folder:
        os.rmdir(folder)


if __name__ == "__main__":
    main()
