"""tools/analyze_logs.py: cal_train_time numbers, plot_curve images and its errors."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("analyze_logs_tool", REPO / "tools" / "analyze_logs.py")
analyze_logs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(analyze_logs)

# Four training records and two validation records, as LoggerHook writes them.
RECORDS = [
    {"step": 10, "lr": 0.01, "data_time": 0.002, "loss": 2.0, "time": 0.50},
    {"step": 20, "lr": 0.02, "data_time": 0.001, "loss": 1.5, "time": 0.10},
    {"step": 1, "accuracy/top1": 60.0},
    {"step": 30, "lr": 0.03, "data_time": 0.001, "loss": 1.0, "time": 0.30},
    {"step": 40, "lr": 0.04, "data_time": 0.001, "loss": 0.5, "time": 0.20},
    {"step": 2, "accuracy/top1": 80.0},
]


def write_run(folder: Path, records=RECORDS) -> Path:
    path = folder / "20260101_000000" / "vis_data" / "scalars.json"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_cal_train_time_leaves_the_first_out(tmp_path):
    stats = analyze_logs.cal_train_time(str(write_run(tmp_path)))
    # Times 0.10, 0.30, 0.20 (0.50 at step 10 is start-up): mean 0.2, population std sqrt(0.02/3).
    assert stats["count"] == 3
    assert stats["average"] == pytest.approx(0.2)
    assert stats["slowest"] == (30, pytest.approx(0.30))
    assert stats["fastest"] == (20, pytest.approx(0.10))
    assert stats["std"] == pytest.approx(math.sqrt(0.02 / 3))


def test_cal_train_time_with_outliers(tmp_path):
    stats = analyze_logs.cal_train_time(str(write_run(tmp_path)), include_outliers=True)
    assert stats["count"] == 4
    assert stats["average"] == pytest.approx(0.275)
    assert stats["slowest"] == (10, pytest.approx(0.50))


def test_cal_train_time_from_the_text_log(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        "11/21 19:29:12 - minirunner - INFO - Epoch(train)  [1][ 5/10]  lr: 1.0000e-02  eta: 0:00:01  "
        "time: 0.4000  data_time: 0.0010  loss: 1.0000\n"
        "11/21 19:29:13 - minirunner - INFO - Epoch(train)  [1][10/10]  lr: 1.0000e-02  eta: 0:00:01  "
        "time: 0.2000  data_time: 0.0010  loss: 0.9000\n"
        "11/21 19:29:13 - minirunner - INFO - Epoch(val) [1][2/2]  accuracy/top1: 50.0000  data_time: 0.0010  "
        "time: 9.0000\n"
        "11/21 19:29:14 - minirunner - INFO - Epoch(train)  [2][ 5/10]  lr: 1.0000e-02  eta: 0:00:01  "
        "time: 0.1000  data_time: 0.0010  loss: 0.8000\n",
        encoding="utf-8",
    )
    assert analyze_logs.load_train_times(str(log)) == [(5, 0.4), (10, 0.2), (15, 0.1)]
    iter_log = tmp_path / "iter.log"
    iter_log.write_text("x - INFO - Iter(train) [  50/1000]  lr: 1.0000e-01  eta: 0:00:47  time: 0.0500  "
                        "data_time: 0.0020  loss: 1.5000\n", encoding="utf-8")
    assert analyze_logs.load_train_times(str(iter_log)) == [(50, 0.05)]
    stats = analyze_logs.cal_train_time(str(log))
    assert stats["average"] == pytest.approx(0.15) and stats["fastest"] == (15, pytest.approx(0.1))


def test_cal_train_time_command(tmp_path, capsys):
    write_run(tmp_path)
    assert analyze_logs.main(["cal_train_time", str(tmp_path / "20260101_000000")]) == 0
    out = capsys.readouterr().out
    assert "average: 0.2000 s/iter" in out
    assert "slowest: 0.3000 s/iter at iteration 30" in out
    assert "fastest: 0.1000 s/iter at iteration 20" in out


def test_runs_are_found_from_their_folders(tmp_path):
    path = write_run(tmp_path)
    run = tmp_path / "20260101_000000"
    assert analyze_logs.find_scalars(str(run)) == str(path)
    assert analyze_logs.find_scalars(str(run / "vis_data")) == str(path)
    assert analyze_logs.run_name(str(run)) == f"{tmp_path.name}/20260101_000000"
    with pytest.raises(analyze_logs.AnalyzeError, match="no such file or folder"):
        analyze_logs.find_scalars(str(tmp_path / "nothing"))


def test_a_work_dir_lists_its_runs(tmp_path):
    work_dir = tmp_path / "work"
    # Runs started in the same second as an earlier one get _2, _3, ... _10 (in that order).
    for stamp in ("20260102_000000_10", "20260102_000000", "20260101_000000", "20260102_000000_2",
                  "20260103_000000"):
        path = work_dir / stamp / "vis_data" / "scalars.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(RECORDS[0]) + "\n", encoding="utf-8")
    (work_dir / "20260104_000000").mkdir()  # a run that crashed before logging: not listed
    (work_dir / "config.py").write_text("", encoding="utf-8")
    runs = analyze_logs.list_runs(str(work_dir))
    names = ["20260101_000000", "20260102_000000", "20260102_000000_2", "20260102_000000_10", "20260103_000000"]
    assert runs == [str(work_dir / name) for name in names]  # oldest first
    with pytest.raises(analyze_logs.AnalyzeError) as caught:
        analyze_logs.find_scalars(str(work_dir))
    message = str(caught.value)
    assert "no such file" not in message
    for run in runs:
        assert run in message
    assert f"{runs[-1]}  (latest training run)" in message
    assert f"e.g. {runs[-1]} for the latest training run" in message


def test_a_test_run_is_marked_and_the_latest_training_run_suggested(tmp_path):
    write_run(tmp_path)
    trained = str(tmp_path / "20260101_000000")
    tested = tmp_path / "20260102_000000" / "vis_data" / "scalars.json"  # what tools/test.py writes
    tested.parent.mkdir(parents=True)
    tested.write_text(json.dumps({"step": 0, "iter": 0, "accuracy/top1": 99.4}) + "\n", encoding="utf-8")
    message = analyze_logs.runs_message(str(tmp_path), analyze_logs.list_runs(str(tmp_path)))
    assert f"{tested.parents[1]}  (no training: a test or validation run)" in message
    assert f"{trained}  (latest training run)" in message
    assert f"e.g. {trained} for the latest training run" in message
    with pytest.raises(analyze_logs.AnalyzeError, match="a tools/test.py run logs metrics only"):
        analyze_logs.cal_train_time(str(tested))


def test_a_work_dir_given_to_a_command_lists_its_runs(tmp_path, capsys):
    write_run(tmp_path)
    run = str(tmp_path / "20260101_000000")
    for command in (["cal_train_time", str(tmp_path)],
                    ["plot_curve", str(tmp_path), "--out", str(tmp_path / "c.png")]):
        assert analyze_logs.main(command) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path} is a work dir holding 1 run(s)" in err and run in err
    assert not (tmp_path / "c.png").exists()


def test_empty_and_missing_folders_are_told_apart(tmp_path):
    with pytest.raises(analyze_logs.AnalyzeError, match="no such file or folder"):
        analyze_logs.find_scalars(str(tmp_path / "nothing"))
    with pytest.raises(analyze_logs.AnalyzeError, match="no <timestamp>/vis_data/scalars.json runs in it"):
        analyze_logs.find_scalars(str(tmp_path))
    assert analyze_logs.list_runs(str(tmp_path / "nothing")) == []


def test_smooth_is_a_trailing_moving_average():
    values = [1.0, 3.0, 5.0, 7.0, 9.0]
    # Each point is the mean of itself and up to N - 1 points before it.
    assert analyze_logs.smooth(values, 2) == pytest.approx([1.0, 2.0, 4.0, 6.0, 8.0])
    assert analyze_logs.smooth(values, 3) == pytest.approx([1.0, 2.0, 3.0, 5.0, 7.0])
    assert analyze_logs.smooth(values, 1) == values
    assert analyze_logs.smooth(values, 100) == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    assert analyze_logs.smooth([], 4) == []
    with pytest.raises(analyze_logs.AnalyzeError, match="--smooth must be at least 1"):
        analyze_logs.smooth(values, 0)


def test_plot_title_names_a_single_run():
    assert analyze_logs.plot_title(None, ["work/20260101_000000"]) == "work/20260101_000000"
    assert analyze_logs.plot_title("lr 0.1", ["work/20260101_000000"]) == "lr 0.1 (work/20260101_000000)"
    # Several runs: the legend tells them apart, the title stays as given.
    assert analyze_logs.plot_title("compare", ["a/1", "b/2"]) == "compare"
    assert analyze_logs.plot_title(None, ["a/1", "b/2"]) is None


def test_log_scale_and_smooth_arguments():
    def parse(*extra):
        return analyze_logs.parse_args(["plot_curve", "run", "--out", "c.png", *extra])

    args = parse()
    assert args.log_scale == [] and args.smooth == 1
    assert parse("--log-scale", "y").log_scale == ["y"]
    assert parse("--log-scale", "x", "y").log_scale == ["x", "y"]
    assert parse("--smooth", "5").smooth == 5
    with pytest.raises(SystemExit):
        parse("--log-scale", "z")
    with pytest.raises(SystemExit):
        parse("--smooth", "two")


def test_log_scale_and_smooth_are_checked_before_plotting(tmp_path):
    path = str(write_run(tmp_path))
    out = str(tmp_path / "c.png")
    with pytest.raises(analyze_logs.AnalyzeError, match="--smooth must be at least 1"):
        analyze_logs.plot_curve([path], ["loss"], out, smooth_points=0)
    with pytest.raises(analyze_logs.AnalyzeError, match="--log-scale takes x and/or y, got z"):
        analyze_logs.plot_curve([path], ["loss"], out, log_scale=["z"])


def test_log_scale_notes_points_it_cannot_show():
    data = {"lr": [([0, 10], [0.0, 0.1])], "loss": [([1, 10], [2.0, 1.0])]}
    assert analyze_logs.log_scale_notes(data, []) == []
    assert analyze_logs.log_scale_notes(data, ["y"]) == ["'lr' has a value <= 0, which the log y axis leaves out"]
    assert analyze_logs.log_scale_notes(data, ["x"]) == ["'lr' has a step <= 0, which the log x axis leaves out"]


def test_curve_data_and_unknown_keys(tmp_path):
    runs = [analyze_logs.load_scalars(str(write_run(tmp_path)))]
    data = analyze_logs.curve_data(runs, ["loss", "accuracy/top1"])
    assert data["loss"] == [([10, 20, 30, 40], [2.0, 1.5, 1.0, 0.5])]
    assert data["accuracy/top1"] == [([1, 2], [60.0, 80.0])]
    with pytest.raises(analyze_logs.AnalyzeError, match=r"no run logged 'los'\. Did you mean 'loss'\?"):
        analyze_logs.curve_data(runs, ["los"])


def test_plot_curve_without_matplotlib_says_how_to_install(tmp_path, monkeypatch, capsys):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.ticker"):
        monkeypatch.setitem(sys.modules, name, None)  # the import fails, installed or not
    write_run(tmp_path)
    code = analyze_logs.main(["plot_curve", str(tmp_path / "20260101_000000"), "--keys", "loss",
                              "--out", str(tmp_path / "curve.png")])
    assert code == 2
    err = capsys.readouterr().err
    # The checkout's extra, not a package named minirunner from an index.
    assert "pip install -e '.[plot]'" in err
    assert "minirunner[plot]" not in err
    assert not (tmp_path / "curve.png").exists()


def test_plot_curve_legend_must_name_every_run(tmp_path):
    path = str(write_run(tmp_path))
    with pytest.raises(analyze_logs.AnalyzeError, match="one per run"):
        analyze_logs.plot_curve([path, path], ["loss"], str(tmp_path / "c.png"), legend=["only one"])


@pytest.mark.parametrize("width, height", [(800, 600), (641, 333), (1000, None)])
def test_plot_curve_writes_a_png_of_the_requested_size(tmp_path, width, height):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    first = write_run(tmp_path / "a")
    second = write_run(tmp_path / "b", [dict(r, loss=r["loss"] * 2) if "loss" in r else r for r in RECORDS])
    out = tmp_path / "plots" / "curve.png"
    analyze_logs.plot_curve([str(first), str(second)], ["loss", "lr", "accuracy/top1"], str(out),
                            title="two runs", legend=["A", "B"], width=width, height=height)
    assert png_size(out) == (width, height if height is not None else 3 * 300)


def test_plot_curve_with_log_scale_smoothing_and_a_titled_single_run(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig

    def keep(figure, *args, **kwargs):
        saved.append(figure)
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    path = write_run(tmp_path)
    out = tmp_path / "curve.png"
    analyze_logs.plot_curve([str(path)], ["loss", "lr"], str(out), title="T", log_scale=["x", "y"],
                            smooth_points=2, width=400, height=500)
    assert png_size(out) == (400, 500)
    figure = saved[0]
    assert figure.get_suptitle() == f"T ({tmp_path.name}/20260101_000000)"
    loss_axis, lr_axis = figure.axes[:2]
    assert loss_axis.get_xscale() == "log" and loss_axis.get_yscale() == "log"
    # The smoothed curve (labelled) and the raw one under it.
    smoothed, raw = loss_axis.get_lines()
    assert list(smoothed.get_ydata()) == pytest.approx([2.0, 1.75, 1.25, 0.75])
    assert list(raw.get_ydata()) == pytest.approx([2.0, 1.5, 1.0, 0.5])
    assert smoothed.get_color() == raw.get_color()
    assert loss_axis.get_ylabel() == "loss (mean of 2)"
    assert capsys.readouterr().err == ""  # every step and value is positive: nothing to note


@pytest.mark.multiprocess
@pytest.mark.timeout(200)
def test_command_line(tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    write_run(tmp_path)
    out = tmp_path / "curve.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "analyze_logs.py"), "plot_curve", str(tmp_path / "20260101_000000"),
         "--keys", "loss", "lr", "--out", str(out), "--width", "500", "--height", "400", "--title", "T",
         "--log-scale", "y", "--smooth", "3"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert png_size(out) == (500, 400)
