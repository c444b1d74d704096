"""What ``tools/train.py`` prints for configs that used to end in a traceback, or in a run
that "succeeded" at nothing: one ``config error:`` line naming the key (or file), exit 2.

The tool runs in this process through its ``main(argv)``, which is what ``python
tools/train.py`` calls; every case fails before training, so each takes well under a second.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "configs" / "digits_mlp.py"


@pytest.fixture(scope="module")
def train_tool():
    spec = importlib.util.spec_from_file_location("train_tool", REPO / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(train_tool, tmp_path, capsys, monkeypatch):
    """``run(config_text_or_bytes, *args)``: the exit status and the lines on stderr."""
    # main() installs its traceback hook; keep it out of the rest of the test session.
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    def _run(config: str | bytes, *args: str) -> tuple[int, list[str]]:
        path = tmp_path / "cfg.py"
        if isinstance(config, bytes):
            path.write_bytes(config)
        else:
            path.write_text(textwrap.dedent(config), encoding="utf-8")
        status = train_tool.main([str(path), "--work-dir", str(tmp_path / "work"), *args])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return status, captured.err.splitlines()

    return _run


def _on_digits(text: str) -> str:
    return f"_base_ = [{str(DIGITS)!r}]\n" + textwrap.dedent(text)


def test_a_config_that_is_not_utf8(run, tmp_path):
    config = _on_digits("# lr tuned by Ren\u00e9\n").encode("latin-1")
    status, lines = run(config)
    assert status == 2
    assert lines == [
        f"config error: {tmp_path / 'cfg.py'}, line 2, column 18: byte 0xe9 (offset "
        f"{config.index(0xE9)}) is not valid UTF-8; the file seems to be saved in another "
        "encoding, such as Latin-1 or cp1252. Config files are read as UTF-8: save it as UTF-8 in "
        "your editor, or convert it with iconv -f latin1 -t utf-8"
    ]


def test_a_base_file_that_is_not_utf8(run, tmp_path):
    base = tmp_path / "base.py"
    base.write_bytes("x = 1  # caf\u00e9\n".encode("latin-1"))
    status, lines = run(f"_base_ = ['./base.py', {str(DIGITS)!r}]\n")
    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith(
        f"config error: {base}, line 1, column 13 (a _base_ file of {tmp_path / 'cfg.py'}): byte 0xe9"
    )
    assert "save it as UTF-8" in lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "config error: optim_wrapper.optimizer.lr: must be a non-negative number, got 'fast' (str); "
             "write e.g. lr=0.001 (SGD's default)"),
        (["--cfg-options", "optim_wrapper.optimizer.lr=-0.1"],
         "config error: optim_wrapper.optimizer.lr: must be non-negative, got -0.1 (SGD raised: Invalid "
         "learning rate: -0.1); use a value >= 0"),
        (["--cfg-options", "optim_wrapper.optimizer.lr=0.1", "optim_wrapper.optimizer.momentum=high"],
         "config error: optim_wrapper.optimizer.momentum: must be a non-negative number, got 'high' (str); "
         "write e.g. momentum=0 (SGD's default)"),
    ],
)
def test_optimizer_numbers(run, args, expected):
    status, lines = run(_on_digits("optim_wrapper = dict(optimizer=dict(lr='fast'))\n"), *args)
    assert (status, lines) == (2, [expected])


@pytest.mark.parametrize(
    "config, args, shown",
    [
        ("randomness = dict(seed='abc')\n", [], "'abc' (str); write e.g. seed=0"),
        ("randomness = dict(seed=1.5)\n", [], "1.5 (float); write e.g. seed=0"),
        ("", ["--seed", "-1"], "-1; pick a seed in that range"),
        ("", ["--cfg-options", "randomness.seed=99999999999"], "99999999999; pick a seed in that range"),
    ],
)
def test_random_seed(run, config, args, shown):
    status, lines = run(_on_digits(config), *args)
    assert (status, lines) == (
        2, [f"config error: randomness.seed: must be an int from 0 to 4294967295 or None (a random seed), got {shown}"]
    )


@pytest.mark.parametrize("value, shown", [("0", "0"), ("-1", "-1"), ("'ten'", "'ten'")])
def test_max_epochs_is_named_once(run, value, shown):
    status, lines = run(_on_digits(f"train_cfg = dict(max_epochs={value})\n"))
    assert (status, lines) == (
        2, [f"config error: train_cfg.max_epochs: must be a positive int (the number of epochs to train), "
            f"got {shown}; write e.g. max_epochs=12"]
    )


def test_val_interval_is_named_once(run):
    status, lines = run(_on_digits("train_cfg = dict(val_interval=0)\n"))
    assert status == 2
    assert lines == [
        "config error: train_cfg.val_interval: must be a positive int (validate every this many epochs), "
        "got 0; write e.g. val_interval=1"
    ]


def test_an_empty_training_set(run, tmp_path):
    status, lines = run(_on_digits("train_dataloader = dict(dataset=[])\n"))
    assert (status, lines) == (
        2, ["config error: train_dataloader: its dataset (list) is empty, so it yields no batch; give the "
            "dataset samples (check its paths, split and filters)"]
    )
    assert not list((tmp_path / "work").glob("*.pth"))


def test_a_training_set_smaller_than_one_batch_with_drop_last(run, tmp_path):
    # The digits training split has 1,438 samples.
    status, lines = run(_on_digits("train_dataloader = dict(batch_size=2000, drop_last=True)\n"))
    assert (status, lines) == (
        2, ["config error: train_dataloader: its dataset has 1438 samples, fewer than batch_size=2000, and "
            "drop_last=True drops the incomplete batch, so it yields no batch; set batch_size to 1438 or "
            "less, or drop_last=False"]
    )
    assert not list((tmp_path / "work").glob("*.pth"))


def test_an_empty_validation_set(run):
    status, lines = run(_on_digits("val_dataloader = dict(dataset=[])\n"))
    assert (status, lines) == (
        2, ["config error: val_dataloader: its dataset (list) is empty, so it yields no batch; give the "
            "dataset samples (check its paths, split and filters)"]
    )
