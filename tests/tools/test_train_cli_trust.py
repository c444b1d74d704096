"""The command-line tools on bad checkpoints and paths, a full disk, a locked work dir, and the
files each command may write."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minirunner.checkpoint import CorruptCheckpointError, load_checkpoint_file, verify_checkpoint
from runner_support import file_hashes

REPO = Path(__file__).resolve().parents[2]

TINY = textwrap.dedent(
    """
    model = dict(type='MLPClassifier', in_features=4, hidden_dims=(8,), num_classes=2)
    _data = dict(
        dataset=dict(type='SyntheticClassification', num_samples=8, num_features=4, num_classes=2),
        sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4)
    train_dataloader = _data
    val_dataloader = _data
    test_dataloader = _data
    train_cfg = dict(by_epoch=True, max_epochs=2)
    val_cfg = dict()
    test_cfg = dict()
    val_evaluator = dict(type='Accuracy')
    test_evaluator = dict(type='Accuracy')
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=2))
    randomness = dict(seed=0)
    """
)


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"minirunner_tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_tool = _load_tool("train")
test_tool = _load_tool("test")


def _tool(script: str, *args, cwd: Path = REPO, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / script), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("trust")
    config = folder / "tiny.py"
    config.write_text(TINY)
    work = folder / "work"
    assert train_tool.main([str(config), "--work-dir", str(work)]) == 0
    return config, work


def _one_line(captured: str) -> str:
    lines = [line for line in captured.splitlines() if line.strip()]
    assert len(lines) == 1, captured
    assert "Traceback" not in captured
    return lines[0]


# ---------------------------------------------------------------------------------- bad paths
@pytest.mark.parametrize("option", ["--resume", "--load-from"])
def test_a_missing_file_or_a_folder_gives_one_line_and_exit_2(tmp_path, trained, capsys, option):
    config, _ = trained
    work = tmp_path / "work"
    for target, fragment in ((tmp_path / "nope.pth", "checkpoint not found"), (tmp_path, "is a directory")):
        assert train_tool.main([str(config), "--work-dir", str(work), option, str(target)]) == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith(f"config error: {option[2:].replace('-', '_')}: ") and fragment in line
    assert not work.exists()  # found before anything was built or written


def test_a_url_load_from_says_to_download_first(tmp_path, trained, capsys):
    config, _ = trained
    url = "https://download.example.org/resnet.pth"
    assert train_tool.main([str(config), "--work-dir", str(tmp_path / "w"), "--load-from", url]) == 2
    assert "Download it first" in _one_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------- damaged files
def _damaged_directory_variant(good: bytes) -> bytes:
    """A single-bit flip near the end that the CRC check does not see but torch.load fails on
    (the zip directory itself is damaged): found by trying, deterministically."""
    probe = Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"probe-{os.getpid()}.pth"
    try:
        for position in range(len(good) - 1, max(len(good) - 3000, 0), -1):
            for bit in range(8):
                damaged = bytearray(good)
                damaged[position] ^= 1 << bit
                probe.write_bytes(damaged)
                try:
                    verify_checkpoint(str(probe))
                except CorruptCheckpointError:
                    continue
                try:
                    torch.load(probe, weights_only=True)
                except RuntimeError:
                    return bytes(damaged)
    finally:
        probe.unlink(missing_ok=True)
    raise AssertionError("no flip damaged the zip directory")


@pytest.fixture(scope="module")
def damaged(trained, tmp_path_factory) -> Path:
    _, work = trained
    path = tmp_path_factory.mktemp("damaged") / "epoch_2.pth"
    path.write_bytes(_damaged_directory_variant((work / "epoch_2.pth").read_bytes()))
    return path


def test_a_damaged_zip_directory_is_a_damaged_checkpoint(damaged):
    with pytest.raises(CorruptCheckpointError, match="truncated or damaged"):
        load_checkpoint_file(str(damaged))


@pytest.mark.parametrize("option", ["--resume", "--load-from"])
def test_train_reports_a_damaged_checkpoint_in_one_line(tmp_path, trained, damaged, capsys, option):
    config, _ = trained
    assert train_tool.main([str(config), "--work-dir", str(tmp_path / "w"), option, str(damaged)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("checkpoint error: ") and str(damaged) in line and "damaged" in line


def test_test_tool_reports_a_damaged_checkpoint_in_one_line(tmp_path, trained, damaged, capsys):
    config, _ = trained
    assert test_tool.main([str(config), str(damaged), "--work-dir", str(tmp_path / "w")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("checkpoint error: ") and "damaged" in line


# ---------------------------------------------------------------------------------- files each command writes
@pytest.mark.slow
def test_the_test_tool_writes_only_inside_its_own_timestamp_folder(trained):
    config, work = trained
    before = file_hashes(work)
    result = _tool("test.py", config, work / "epoch_2.pth", "--work-dir", work)
    assert result.returncode == 0, result.stderr[-3000:]
    after = file_hashes(work)
    new = {name for name in after if name not in before}
    changed = {name for name in before if after.get(name) != before[name]}
    assert not changed  # the training's config dump and checkpoints are untouched
    folders = {Path(name).parts[0] for name in new}
    assert len(folders) == 1 and all(len(Path(name).parts) > 1 for name in new)
    assert "tiny.py" in {Path(name).name for name in new}  # its own config dump, in its folder


@pytest.mark.slow
def test_dry_run_creates_no_file_or_folder(tmp_path, trained):
    config, _ = trained
    work = tmp_path / "work"
    result = _tool("train.py", config, "--work-dir", work, "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dry run finished" in result.stdout
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------- the lock
@pytest.mark.slow
def test_a_second_run_in_a_locked_work_dir_exits_2_naming_the_holder(tmp_path, trained):
    config, work = trained
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from minirunner.checkpoint import WorkDirLock
            lock = WorkDirLock({str(work)!r}); lock.acquire()
            print('locked', flush=True)
            sys.stdin.read()  # holds the lock until the test closes stdin
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = file_hashes(work)
        result = _tool("train.py", config, "--work-dir", work, "--resume")
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        line = _one_line(result.stderr)
        assert str(work) in line and f"pid {holder.pid}" in line and "--work-dir" in line
        assert file_hashes(work) == before
        # Evaluating does not need the lock.
        result = _tool("test.py", config, work / "epoch_2.pth", "--work-dir", tmp_path / "eval")
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# ---------------------------------------------------------------------------------- disk full
@pytest.fixture
def small_disk(tmp_path):
    """A 640 KiB tmpfs (needs root, as CI runs); None where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


BIG = TINY.replace("hidden_dims=(8,)", "hidden_dims=(6000,)")  # about 190 KB per checkpoint


def test_disk_full_during_a_save_is_one_error_line_and_exit_1(tmp_path, small_disk, capsys, monkeypatch):
    config = tmp_path / "big.py"
    config.write_text(BIG.replace("max_keep_ckpts=2", "max_keep_ckpts=-1").replace("max_epochs=2", "max_epochs=6"))
    if small_disk is not None:
        work = small_disk / "work"
    else:  # no tmpfs here: a write that fills the disk, as torch's writer reports it
        work = tmp_path / "work"
        real_save, saves = torch.save, []

        def filling_save(obj, path, *args, **kwargs):
            saves.append(path)
            if len(saves) < 3:
                return real_save(obj, path, *args, **kwargs)
            Path(path).write_bytes(b"PK\x03\x04 partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

        monkeypatch.setattr(torch, "save", filling_save)
        monkeypatch.setattr(os, "statvfs", lambda folder: os.statvfs_result((4096, 4096, 10, 0, 0, 10, 0, 0, 0, 255)))
    assert train_tool.main([str(config), "--work-dir", str(work)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    errors = [line for line in (captured.out + captured.err).splitlines() if " - ERROR - " in line]
    assert len(errors) == 1
    assert "no space left on device while writing" in errors[0] and str(work) in errors[0]
    saved = sorted(p.name for p in work.glob("*.pth"))
    assert saved and not list(work.glob(".*.tmp-*"))  # the partial file is gone
    for name in saved:
        verify_checkpoint(str(work / name))  # older checkpoints intact
    pointer = (work / "last_checkpoint").read_text()
    assert pointer == saved[-1]
    log = "".join(p.read_text() for p in work.glob("*/*.log"))
    assert "Traceback" in log and "DiskFullError" in log
