"""resume='auto': the newest checkpoint that verifies; damaged and unsafe files are skipped."""

from __future__ import annotations

import logging
import os
import zipfile

import pytest
import torch

from minirunner.hooks import Hook
from minirunner.runner import Runner
from minirunner.checkpoint import CorruptCheckpointError, UnsafeCheckpointError, find_latest_checkpoint
from runner_support import loader_cfg


def _data(num_samples: int, shuffle: bool) -> dict:
    return loader_cfg(num_samples, 4, shuffle, num_features=8, num_classes=3)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3, dropout=0.3),
        work_dir=str(work_dir),
        train_dataloader=_data(20, shuffle=True),  # 5 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=3)),
        randomness=dict(seed=5),
    )
    cfg.update(overrides)
    return cfg


class Crash(Exception):
    pass


class CrashAfter(Hook):
    priority = "LOWEST"

    def __init__(self, iters: int) -> None:
        self.iters = iters

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iters:
            raise Crash


class Start(Hook):
    def before_train(self, runner):
        self.at = runner.iter


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def capture():
    handler = Capture()
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict:
    runner = Runner(**_cfg(tmp_path_factory.mktemp("straight")))
    runner.train()
    return {k: v.clone() for k, v in runner.model.state_dict().items()}


def _interrupted(work_dir, at: int = 8) -> None:
    """A run that crashed after iteration ``at``, leaving iter_3.pth and iter_6.pth."""
    with pytest.raises(Crash):
        Runner(**_cfg(work_dir, custom_hooks=[CrashAfter(at)])).train()


def _resume(work_dir, **overrides) -> tuple[Runner, int]:
    start = Start()
    runner = Runner(**_cfg(work_dir, resume="auto", custom_hooks=[start], **overrides))
    runner.train()
    return runner, start.at


def _assert_same_weights(runner: Runner, expected: dict) -> None:
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def _truncate(path) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def _flip_tensor_byte(path) -> None:
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)  # the largest tensor
    data = bytearray(open(path, "rb").read())
    data[info.header_offset + 200] ^= 0x01  # inside the record's data (headers are < 200 bytes)
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("damage, reason", [(_truncate, "truncated"), (_flip_tensor_byte, "CRC-32")])
def test_damaged_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, straight, capture, damage, reason):
    _interrupted(tmp_path)
    assert open(tmp_path / "last_checkpoint").read().endswith("iter_6.pth")
    damage(tmp_path / "iter_6.pth")
    runner, start = _resume(tmp_path)
    assert start == 3
    skipped = [line for line in capture.lines if line.startswith("resume: skipping") and "iter_6.pth" in line]
    assert len(skipped) == 1 and reason in skipped[0], capture.lines
    assert any("resumed from" in line and "iter_3.pth" in line for line in capture.lines)
    _assert_same_weights(runner, straight)


def test_the_newest_file_wins_over_a_pointer_left_behind(tmp_path, straight):
    # Killed after iter_6.pth was renamed into place but before the pointer moved.
    _interrupted(tmp_path)
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "iter_3.pth"))
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path / "iter_6.pth")
    runner, start = _resume(tmp_path)
    assert start == 6
    _assert_same_weights(runner, straight)


def test_an_earlier_runs_later_checkpoints_are_not_taken(tmp_path, straight):
    # A longer earlier run in the same folder left iter_9.pth; this run (a new one, not a
    # resume) got to iter_6. Its pointer says which run to continue.
    with pytest.raises(Crash):
        Runner(**_cfg(tmp_path, randomness=dict(seed=99), custom_hooks=[CrashAfter(10)])).train()
    assert os.path.isfile(tmp_path / "iter_9.pth")
    _interrupted(tmp_path)  # overwrites iter_3.pth and iter_6.pth
    runner, start = _resume(tmp_path)
    assert start == 6
    _assert_same_weights(runner, straight)


def test_every_checkpoint_damaged_starts_from_scratch(tmp_path, straight, capture):
    _interrupted(tmp_path)
    _truncate(tmp_path / "iter_6.pth")
    _flip_tensor_byte(tmp_path / "iter_3.pth")
    runner, start = _resume(tmp_path)
    assert start == 0
    assert sum(line.startswith("resume: skipping") for line in capture.lines) == 2
    _assert_same_weights(runner, straight)


def test_an_explicit_damaged_checkpoint_is_an_error_not_a_fallback(tmp_path):
    _interrupted(tmp_path)
    _flip_tensor_byte(tmp_path / "iter_6.pth")
    runner = Runner(**_cfg(tmp_path, resume=str(tmp_path / "iter_6.pth")))
    with pytest.raises(CorruptCheckpointError, match="iter_6.pth"):
        runner.train()


class _Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_unsafe_checkpoints_are_refused_everywhere_without_running_them(tmp_path, capture):
    marker = tmp_path / "MARKER"
    work = tmp_path / "work"
    _interrupted(work)
    evil = work / "iter_7.pth"  # looks newest
    good = torch.load(work / "iter_6.pth", weights_only=True)
    good["meta"]["payload"] = _Marker(str(marker))
    torch.save(good, evil)
    (work / "last_checkpoint").write_text(str(evil))
    _, start = _resume(work)
    assert start == 6  # skipped, with a report
    assert any("iter_7.pth" in line and "skipping" in line for line in capture.lines)
    with pytest.raises(UnsafeCheckpointError, match="convert_checkpoint.py"):
        Runner(**_cfg(tmp_path / "other", resume=str(evil))).train()
    with pytest.raises(UnsafeCheckpointError, match="convert_checkpoint.py"):
        Runner(**_cfg(tmp_path / "other2", load_from=str(evil))).train()
    assert not marker.exists()
