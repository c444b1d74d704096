"""Curves and timing from a run's logs.

Plot chosen scalars of one or more runs against their step (one panel per key)::

    python tools/analyze_logs.py plot_curve RUN1/vis_data/scalars.json RUN2/vis_data/scalars.json \\
        --keys loss lr accuracy/top1 --out curve.png --title "lr 0.1 vs 0.2" --legend lr0.1 lr0.2

``--log-scale y`` (or ``x``, or ``x y``) puts those axes on a log scale; ``--smooth N`` draws
the moving average over N logged points over the faint raw curve.

Average, slowest and fastest iteration times::

    python tools/analyze_logs.py cal_train_time RUN/vis_data/scalars.json

A run can be named by its ``scalars.json``, its ``vis_data`` folder or its log folder
(``<work_dir>/<timestamp>``); ``cal_train_time`` also reads the text log (``<timestamp>.log``).
Naming the work dir itself lists its runs. Plotting needs matplotlib: in the project's
environment, ``pip install -e '.[plot]'``.
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

# The extra of the checkout being run, not a package of that name from an index.
PLOT_HINT = ("plot_curve needs matplotlib, which is not installed: "
             "pip install -e '.[plot]' (in the project's folder and environment)")
LOG_AXES = ("x", "y")


class AnalyzeError(Exception):
    """A problem with the command line or the logs that the user can fix."""


# ---------------------------------------------------------------------- reading logs
def list_runs(work_dir: str) -> list[str]:
    """The run folders (``<timestamp>`` holding ``vis_data/scalars.json``) of a work dir, oldest first.

    Timestamps sort as text in time order, so the last one is the latest run; runs started in
    the same second (``<timestamp>_2``, ``_3``, ...) follow their suffix as a number.
    """
    if not os.path.isdir(work_dir):
        return []
    names = sorted(
        (name for name in os.listdir(work_dir)
         if os.path.isfile(os.path.join(work_dir, name, "vis_data", "scalars.json"))),
        key=_run_order,
    )
    return [os.path.join(work_dir, name) for name in names]


def _run_order(name: str) -> tuple[str, int]:
    stem, _, suffix = name.rpartition("_")
    return (stem, int(suffix)) if len(suffix) < 6 and suffix.isdigit() else (name, 0)


def has_training_records(run: str) -> bool:
    """Whether a run logged training iterations (``tools/test.py`` runs log metrics only)."""
    with open(os.path.join(run, "vis_data", "scalars.json"), encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and _is_training_record(record):
                return True
    return False


def _is_training_record(record: dict[str, Any]) -> bool:
    # Training records carry data_time as well as time; validation and test records hold metrics.
    return "time" in record and "data_time" in record


def runs_message(work_dir: str, runs: list[str]) -> str:
    """What to say when a work dir is named where a run is meant: its runs, and how to pick one.

    Runs that logged no training (a ``tools/test.py`` run) are marked, and the suggestion is the
    latest run that trained, so following it leads to curves and times.
    """
    trained = [run for run in runs if has_training_records(run)]
    latest = trained[-1] if trained else runs[-1]
    lines = [f"{work_dir} is a work dir holding {len(runs)} run(s), not a run; name one of them:"]
    for run in runs:
        marks = [] if run in trained else ["no training: a test or validation run"]
        if run == latest:
            marks.append("latest training run" if trained else "latest")
        lines.append(f"  {run}" + (f"  ({'; '.join(marks)})" if marks else ""))
    what = "the latest training run" if trained else "the latest"
    lines.append(f"e.g. {latest} for {what}; plot_curve takes several to compare them")
    return "\n".join(lines)


def find_scalars(path: str) -> str:
    """The scalars file a path names: the file itself, or ``scalars.json`` under a run folder.

    Raises:
        AnalyzeError: nothing found; for a work dir, the message lists its runs.
    """
    if os.path.isfile(path):
        return path
    for candidate in (os.path.join(path, "scalars.json"), os.path.join(path, "vis_data", "scalars.json")):
        if os.path.isfile(candidate):
            return candidate
    runs = list_runs(path)
    if runs:
        raise AnalyzeError(runs_message(path, runs))
    if os.path.isdir(path):
        raise AnalyzeError(f"{path}: no scalars.json or vis_data/scalars.json under it, and no "
                           "<timestamp>/vis_data/scalars.json runs in it (has a run logged anything yet?)")
    raise AnalyzeError(f"{path}: no such file or folder")


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
    return [(r["step"], float(r["time"])) for r in load_scalars(path) if _is_training_record(r)]


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
        raise AnalyzeError(f"{path}: no training iteration times logged: a tools/test.py run logs metrics "
                           "only; a training run needs the IterTimerHook (default_hooks.timer)")
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


def plot_title(title: str | None, run_names: list[str]) -> str | None:
    """The figure title: ``title``, with the run's name added when a single run is plotted.

    Several runs are told apart by the legend, so their names stay out of the title.
    """
    if len(run_names) != 1:
        return title
    return f"{title} ({run_names[0]})" if title else run_names[0]


def smooth(values: list[float], points: int) -> list[float]:
    """The moving average over ``points`` values: each value is averaged with up to ``points - 1`` before it.

    Trailing, so a point never depends on later ones; the first values average over fewer.
    The result has as many values as ``values``; ``points=1`` returns them unchanged.
    """
    if points < 1:
        raise AnalyzeError(f"--smooth must be at least 1 (points to average), got {points}")
    averaged, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= points:
            total -= values[index - points]
        averaged.append(total / min(index + 1, points))
    return averaged


def log_scale_notes(data: dict[str, list[tuple[list[int], list[float]]]], log_scale: list[str]) -> list[str]:
    """Notes on points a log axis cannot show (a step or value <= 0), one per key that has them."""
    notes = []
    for key, series in data.items():
        for axis, index in (("x", 0), ("y", 1)):
            if axis in log_scale and any(v <= 0 for run in series for v in run[index]):
                name = "step" if axis == "x" else "value"
                notes.append(f"'{key}' has a {name} <= 0, which the log {axis} axis leaves out")
    return notes


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
    log_scale: list[str] | None = None,
    smooth_points: int = 1,
) -> str:
    """Plot ``keys`` of the runs at ``paths`` into the image ``out`` of ``width`` x ``height`` pixels.

    One panel per key, one line per run. Training scalars are plotted against the
    iteration; validation metrics against their step (the epoch for by-epoch runs).
    ``height`` defaults to 300 pixels per panel. ``log_scale`` names the axes (``"x"``,
    ``"y"``) drawn on a log scale; ``smooth_points`` > 1 draws the moving average over that
    many points (see :func:`smooth`) over the faint raw curve. A single run's name is added
    to the title. Returns ``out``.
    """
    log_scale = list(log_scale or [])
    if legend is not None and len(legend) != len(paths):
        raise AnalyzeError(f"--legend gives {len(legend)} name(s) for {len(paths)} run(s); give one per run")
    if width < 1 or (height is not None and height < 1) or dpi < 1:
        raise AnalyzeError("--width, --height and --dpi must be positive")
    unknown = [axis for axis in log_scale if axis not in LOG_AXES]
    if unknown:
        raise AnalyzeError(f"--log-scale takes x and/or y, got {' '.join(unknown)}")
    if smooth_points < 1:
        raise AnalyzeError(f"--smooth must be at least 1 (points to average), got {smooth_points}")
    runs = [load_scalars(path) for path in paths]
    names = [run_name(path) for path in paths]
    labels = legend or names
    data = curve_data(runs, keys)
    for note in log_scale_notes(data, log_scale):
        print(f"note: {note}", file=sys.stderr)
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
            if not steps:
                continue
            marker = "o" if len(steps) < 30 else None
            if smooth_points > 1:
                # The raw curve stays visible, faint and in the same colour, under its average.
                (line,) = axis.plot(steps, smooth(values, smooth_points), label=label, marker=marker)
                axis.plot(steps, values, color=line.get_color(), alpha=0.25, linewidth=1)
            else:
                axis.plot(steps, values, label=label, marker=marker)
        train = all("data_time" in r for records in runs for r in records if key in r)
        axis.set_xlabel("iteration" if train else "step (epoch when validating by epoch)")
        axis.set_ylabel(key if smooth_points == 1 else f"{key} (mean of {smooth_points})")
        if "x" in log_scale:
            axis.set_xscale("log")
        else:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        if "y" in log_scale:
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
        if len(paths) > 1 or legend:
            axis.legend()
    title = plot_title(title, names)
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
    plot.add_argument("--log-scale", nargs="+", choices=LOG_AXES, default=[], metavar="AXIS",
                      help="axes on a log scale: x, y or both (e.g. --log-scale y)")
    plot.add_argument("--smooth", type=int, default=1, metavar="N",
                      help="draw the moving average over N logged points (default 1: none)")

    timing = commands.add_parser("cal_train_time", help="average, slowest and fastest iteration times")
    timing.add_argument("runs", nargs="+", help="scalars.json files, their folders, or text logs (.log)")
    timing.add_argument("--include-outliers", action="store_true",
                        help="keep the first logged time (start-up) in the statistics")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "plot_curve":
            out = plot_curve(args.runs, args.keys, args.out, args.title, args.legend, args.width, args.height,
                             args.dpi, args.log_scale, args.smooth)
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
