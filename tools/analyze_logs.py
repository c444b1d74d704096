"""Curves and timing from a run's logs.

Plot chosen scalars of one or more runs against their step (one panel per key)::

    python tools/analyze_logs.py plot_curve RUN1/vis_data/scalars.json RUN2/vis_data/scalars.json \\
        --keys loss lr accuracy/top1 --out curve.png --title "lr 0.1 vs 0.2" --legend lr0.1 lr0.2

Average, slowest and fastest iteration times::

    python tools/analyze_logs.py cal_train_time RUN/vis_data/scalars.json

A run can be named by its ``scalars.json``, its ``vis_data`` folder or its log folder
(``<work_dir>/<timestamp>``); ``cal_train_time`` also reads the text log (``<timestamp>.log``).
Plotting needs matplotlib (``pip install 'minirunner[plot]'``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
from typing import Any

PLOT_HINT = "plot_curve needs matplotlib, which is not installed: pip install 'minirunner[plot]'"


class AnalyzeError(Exception):
    """A problem with the command line or the logs that the user can fix."""


# ---------------------------------------------------------------------- reading logs
def find_scalars(path: str) -> str:
    """The scalars file a path names: the file itself, or ``scalars.json`` under a run folder."""
    if os.path.isfile(path):
        return path
    for candidate in (os.path.join(path, "scalars.json"), os.path.join(path, "vis_data", "scalars.json")):
        if os.path.isfile(candidate):
            return candidate
    raise AnalyzeError(f"{path}: no such file, and no scalars.json or vis_data/scalars.json under it")


def load_scalars(path: str) -> list[dict[str, Any]]:
    """The records of a ``scalars.json`` (one JSON object per line), in file order."""
    path = find_scalars(path)
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise AnalyzeError(f"{path}:{number}: not a JSON line ({error})") from None
            if not isinstance(record, dict) or "step" not in record:
                raise AnalyzeError(f"{path}:{number}: expected an object with a 'step', got {line.strip()[:80]}")
            records.append(record)
    return records


_TRAIN_LINE = re.compile(
    r"(?:Epoch\(train\)\s*\[(?P<epoch>\d+)\]\[\s*(?P<inner>\d+)/(?P<length>\d+)\]"
    r"|Iter\(train\)\s*\[\s*(?P<iter>\d+)/\d+\])"
)
_TIME = re.compile(r"(?<![\w.])time: (?P<time>[0-9.eE+-]+)")


def load_train_times(path: str) -> list[tuple[int, float]]:
    """``(iteration, time)`` of every logged training line, from ``scalars.json`` or a text log."""
    if path.endswith(".log"):
        times = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                position, value = _TRAIN_LINE.search(line), _TIME.search(line)
                if position is None or value is None:
                    continue
                if position.group("iter") is not None:
                    step = int(position.group("iter"))
                else:
                    epoch, inner = int(position.group("epoch")), int(position.group("inner"))
                    step = (epoch - 1) * int(position.group("length")) + inner
                times.append((step, float(value.group("time"))))
        return times
    # Training records carry data_time as well; validation records hold metrics only.
    return [(r["step"], float(r["time"])) for r in load_scalars(path) if "time" in r and "data_time" in r]


# ---------------------------------------------------------------------- cal_train_time
def cal_train_time(path: str, include_outliers: bool = False) -> dict[str, Any]:
    """Statistics of the logged iteration times of one run.

    Each logged ``time`` is already the mean over the logger's window, so these are
    statistics of those window means. The first logged value (start-up: workers, caches,
    CUDA) is left out unless ``include_outliers`` or it is the only one.

    Returns:
        ``count``, ``average``, ``slowest`` and ``fastest`` (each ``(iteration, seconds)``), ``std``.
    """
    times = load_train_times(path)
    if not times:
        raise AnalyzeError(f"{path}: no training iteration times logged (is the IterTimerHook on?)")
    if not include_outliers and len(times) > 1:
        times = times[1:]
    values = [t for _, t in times]
    average = sum(values) / len(values)
    std = math.sqrt(sum((v - average) ** 2 for v in values) / len(values))
    return {
        "count": len(values),
        "average": average,
        "slowest": max(times, key=lambda item: item[1]),
        "fastest": min(times, key=lambda item: item[1]),
        "std": std,
    }


def _print_train_time(path: str, stats: dict[str, Any], include_outliers: bool) -> None:
    print(f"----- train time of {path} -----")
    note = "" if include_outliers else " (the first left out; --include-outliers keeps it)"
    print(f"logged iteration times: {stats['count']}{note}")
    print(f"average: {stats['average']:.4f} s/iter")
    print(f"slowest: {stats['slowest'][1]:.4f} s/iter at iteration {stats['slowest'][0]}")
    print(f"fastest: {stats['fastest'][1]:.4f} s/iter at iteration {stats['fastest'][0]}")
    print(f"std over logged values: {stats['std']:.4f} s")


# ---------------------------------------------------------------------- plot_curve
def run_name(path: str) -> str:
    """A short label for a run: its log folder's name under its work dir's name."""
    folder = os.path.dirname(os.path.abspath(find_scalars(path)))
    if os.path.basename(folder) == "vis_data":
        folder = os.path.dirname(folder)
    parent = os.path.basename(os.path.dirname(folder))
    return f"{parent}/{os.path.basename(folder)}" if parent else os.path.basename(folder)


def curve_data(runs: list[list[dict]], keys: list[str]) -> dict[str, list[tuple[list[int], list[float]]]]:
    """For each key, each run's ``(steps, values)`` (empty lists where a run lacks the key).

    Raises:
        AnalyzeError: a key that no run logged, naming the keys that exist.
    """
    data: dict[str, list[tuple[list[int], list[float]]]] = {}
    for key in keys:
        series = []
        for records in runs:
            points = [(r["step"], float(r[key])) for r in records if key in r]
            series.append(([s for s, _ in points], [v for _, v in points]))
        if not any(steps for steps, _ in series):
            known = sorted({k for records in runs for r in records for k in r if k != "step"})
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise AnalyzeError(f"no run logged '{key}'.{hint} Logged keys: {', '.join(known)}")
        data[key] = series
    return data


def plot_curve(
    paths: list[str],
    keys: list[str],
    out: str,
    title: str | None = None,
    legend: list[str] | None = None,
    width: int = 800,
    height: int | None = None,
    dpi: int = 100,
) -> str:
    """Plot ``keys`` of the runs at ``paths`` into the image ``out`` of ``width`` x ``height`` pixels.

    One panel per key, one line per run. Training scalars are plotted against the
    iteration; validation metrics against their step (the epoch for by-epoch runs).
    ``height`` defaults to 300 pixels per panel. Returns ``out``.
    """
    if legend is not None and len(legend) != len(paths):
        raise AnalyzeError(f"--legend gives {len(legend)} name(s) for {len(paths)} run(s); give one per run")
    if width < 1 or (height is not None and height < 1) or dpi < 1:
        raise AnalyzeError("--width, --height and --dpi must be positive")
    runs = [load_scalars(path) for path in paths]
    labels = legend or [run_name(path) for path in paths]
    data = curve_data(runs, keys)
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise AnalyzeError(PLOT_HINT) from None

    height = height or 300 * len(keys)
    # A tenth of a pixel over: the renderer truncates the size, and w / dpi * dpi can land
    # just under w in floating point.
    figure = Figure(figsize=((width + 0.1) / dpi, (height + 0.1) / dpi), dpi=dpi, layout="constrained")
    axes = figure.subplots(len(keys), 1, squeeze=False)[:, 0]
    for axis, key in zip(axes, keys):
        for (steps, values), label in zip(data[key], labels):
            if steps:
                axis.plot(steps, values, label=label, marker="o" if len(steps) < 30 else None)
        train = all("data_time" in r for records in runs for r in records if key in r)
        axis.set_xlabel("iteration" if train else "step (epoch when validating by epoch)")
        axis.set_ylabel(key)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        axis.grid(True, alpha=0.3)
        if len(paths) > 1 or legend:
            axis.legend()
    if title:
        figure.suptitle(title)
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    return out


# ---------------------------------------------------------------------- command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Curves and timing from minirunner logs.")
    commands = parser.add_subparsers(dest="command", required=True)

    plot = commands.add_parser("plot_curve", help="plot scalars of one or more runs into an image")
    plot.add_argument("runs", nargs="+", help="scalars.json files (or their vis_data / log folders)")
    plot.add_argument("--keys", nargs="+", default=["loss"], help="scalars to plot (default: loss)")
    plot.add_argument("--out", required=True, help="the image to write, e.g. curve.png")
    plot.add_argument("--title", help="a title above the panels")
    plot.add_argument("--legend", nargs="+", help="one name per run (default: the runs' folder names)")
    plot.add_argument("--width", type=int, default=800, help="image width in pixels (default 800)")
    plot.add_argument("--height", type=int, help="image height in pixels (default 300 per key)")
    plot.add_argument("--dpi", type=int, default=100, help="dots per inch (text size; default 100)")

    timing = commands.add_parser("cal_train_time", help="average, slowest and fastest iteration times")
    timing.add_argument("runs", nargs="+", help="scalars.json files, their folders, or text logs (.log)")
    timing.add_argument("--include-outliers", action="store_true",
                        help="keep the first logged time (start-up) in the statistics")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "plot_curve":
            out = plot_curve(args.runs, args.keys, args.out, args.title, args.legend, args.width, args.height, args.dpi)
            print(f"wrote {out}")
        else:
            for path in args.runs:
                source = path if path.endswith(".log") else find_scalars(path)
                _print_train_time(source, cal_train_time(source, args.include_outliers), args.include_outliers)
    except AnalyzeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
