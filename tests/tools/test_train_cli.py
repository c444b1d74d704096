"""tools/train.py and tools/test.py, run as a user runs them: subprocesses with timeouts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minirunner.config import Config
from minirunner.dataset import DigitsDataset
from minirunner.model import MLPClassifier

pytestmark = [pytest.mark.slow]  # every test runs tools/*.py in a subprocess

REPO = Path(__file__).resolve().parents[2]

# The repo's default config, made quick: 6 iterations per epoch, explicit scheduler ends so
# runs with different max_epochs share one schedule.
SMALL = textwrap.dedent(
    f"""
    _base_ = [{str(REPO / 'configs' / 'digits_mlp.py')!r}]
    train_dataloader = dict(batch_size=256)
    train_cfg = dict(max_epochs=2, val_interval=1)
    param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4)]
    default_hooks = dict(logger=dict(interval=2))
    """
)


def _tool(script: str, *args, cwd: Path = REPO, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / script), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def small(tmp_path) -> Path:
    path = tmp_path / "small_digits.py"
    path.write_text(SMALL)
    return path


# Overrides of the one CLI training run that several tests share (each run costs seconds).
OPTIONS = ["optim_wrapper.optimizer.lr=0.05", "model.hidden_dims=(32,)"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(config, work dir, result) of `train.py small_digits.py --cfg-options ... max_epochs=1`."""
    folder = tmp_path_factory.mktemp("trained")
    config = folder / "small_digits.py"
    config.write_text(SMALL)
    work = folder / "work"
    result = _tool("train.py", config, "--work-dir", work, "--cfg-options", *OPTIONS, "train_cfg.max_epochs=1")
    return config, work, result


def _checkpoints(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.pth")) if folder.is_dir() else []


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_cfg_options_change_values(trained):
    _, work, result = trained
    _ok(result)
    dumped = Config.fromfile(str(work / "small_digits.py"))
    assert dumped.optim_wrapper.optimizer.lr == 0.05
    assert dumped.train_cfg.max_epochs == 1
    assert tuple(dumped.model.hidden_dims) == (32,)
    assert dumped.work_dir == str(work)
    assert _checkpoints(work) == ["epoch_1.pth"]
    checkpoint = torch.load(work / "epoch_1.pth", weights_only=True)
    assert checkpoint["state_dict"]["net.1.weight"].shape == (32, 64)
    assert checkpoint["optimizer"]["param_groups"][0]["initial_lr"] == 0.05
    assert "Epoch(val) [1]" in result.stdout and "accuracy/top1" in result.stdout


def test_dry_run_with_amp_seed_and_default_work_dir(tmp_path, small):
    # Run from another folder: the work dir defaults to ./work_dirs/<config name>.
    result = _tool("train.py", small, "--dry-run", "--amp", "--seed", "5", "--deterministic", cwd=tmp_path)
    _ok(result)
    work = tmp_path / "work_dirs" / "small_digits"
    out = result.stdout
    # Two train iterations (one log line at 2/2) and one val iteration.
    assert re.findall(r"Epoch\(train\)\s+\[1\]\[\s*(\d+)/(\d+)\]", out) == [("2", "2")]
    assert re.findall(r"Epoch\(val\) \[\d+\]\[(\d+)/(\d+)\]", out) == [("1", "1")]
    # The param group table.
    assert "Parameter groups" in out and re.search(r"optimizer\s*.\s*group", out) and "SGD" in out
    assert "dry run finished" in out
    # Nothing saved: no file or folder at all.
    assert sorted(os.listdir(tmp_path)) == ["small_digits.py"] and not work.exists()
    # The config it ran, as the log shows it: the command line's choices are in, and the
    # schedule was not changed for the dry run.
    assert "type='AmpOptimWrapper'" in out
    assert "randomness = dict(seed=5, deterministic=True)" in out
    assert "train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=1)" in out


@pytest.mark.parametrize("config", ["configs/digits_mlp.py", "configs/digits_cnn_amp_accum.py"])
def test_dry_run_of_the_bundled_configs(tmp_path, config):
    result = _tool("train.py", REPO / config, "--dry-run", "--work-dir", tmp_path / "work")
    _ok(result)
    assert "dry run finished: 2 train and 1 val iteration ran" in result.stdout
    assert _checkpoints(tmp_path / "work") == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--cfg-options", "model.type=MLPClasifier"], "Did you mean 'MLPClassifier'"),
        (["--cfg-options", "optim_wrapper.optimizer.type=SDG"], "optim_wrapper.optimizer"),
        (["--cfg-options", "train_cfg.max_epochs"], "KEY=VALUE"),
    ],
)
def test_config_errors_exit_2_with_one_message(tmp_path, small, args, fragment):
    result = _tool("train.py", small, "--work-dir", tmp_path / "work", *args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("config error:"), result.stderr
    assert fragment in lines[0]
    assert _checkpoints(tmp_path / "work") == []


def test_missing_config_file(tmp_path):
    result = _tool("train.py", tmp_path / "nope.py")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope.py" in lines[0] and "Traceback" not in result.stderr


def test_resume_continues(tmp_path, trained):
    config, first, _ = trained
    work = tmp_path / "work"
    shutil.copytree(first, work)
    # The pointer names the first run's folder: resume from the copy's checkpoint instead.
    (work / "last_checkpoint").write_text(str(work / "epoch_1.pth"))
    result = _tool("train.py", config, "--work-dir", work, "--resume", "--cfg-options", *OPTIONS)
    _ok(result)
    assert re.search(r"resumed from .*epoch_1\.pth", result.stdout)
    assert "Epoch(train)  [2]" in result.stdout and "Epoch(train)  [1]" not in result.stdout
    assert _checkpoints(work) == ["epoch_1.pth", "epoch_2.pth"]
    assert torch.load(work / "epoch_2.pth", weights_only=True)["meta"]["epoch"] == 2


def test_test_tool_prints_the_checkpoint_metrics(tmp_path, trained):
    config, work, _ = trained
    result = _tool("test.py", config, work / "epoch_1.pth", "--work-dir", tmp_path / "test_work",
                   "--cfg-options", "model.hidden_dims=(32,)")
    _ok(result)
    match = re.search(r"metrics: \{'accuracy/top1': ([\d.]+)\}", result.stdout)
    assert match, result.stdout[-2000:]
    assert re.search(r"Epoch\(test\) \[3/3\]\s+accuracy/top1", result.stdout)

    # The same number computed here from the checkpoint's weights.
    model = MLPClassifier(in_features=64, hidden_dims=(32,), num_classes=10)
    model.load_state_dict(torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"])
    model.eval()
    data = DigitsDataset(split="val")
    with torch.no_grad():
        predicted = model(data.inputs, mode="tensor").argmax(dim=1)
    expected = 100.0 * (predicted == data.labels).float().mean().item()
    assert float(match.group(1)) == pytest.approx(expected, abs=1e-4)
    assert _checkpoints(tmp_path / "test_work") == []


def test_test_tool_missing_checkpoint(tmp_path, small):
    result = _tool("test.py", small, tmp_path / "missing.pth", "--work-dir", tmp_path / "w")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.pth" in lines[0]
    assert not os.path.exists(tmp_path / "w" / "last_checkpoint")
