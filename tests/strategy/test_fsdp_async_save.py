"""Asynchronous sharded saves (``dcp.async_save``): the same checkpoints as blocking saves, and a
rank killed while one is being written leaves the previous checkpoint to resume from."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from minirunner.checkpoint import verify_checkpoint_dir
from strategy.fsdp_support import JOB, free_port, log_text, train

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("fsdp_environment"),
]
ASYNC = "checkpoint=" + json.dumps({"async_save": True})


def test_async_save_then_resume_gives_the_blocking_runs_weights(tmp_path):
    blocking = train(tmp_path / "blocking", "fsdp", 2, 4)
    background = train(tmp_path / "async", "fsdp", 2, 4, ASYNC)
    for key in blocking:
        assert torch.equal(background[key], blocking[key]), key
    assert sorted(os.listdir(tmp_path / "async" / "iter_8")) == [".metadata", "__0_0.distcp", "__1_0.distcp", "state.pth"]
    resumed = train(tmp_path / "resumed", "fsdp", 2, 4, ASYNC, "resume=" + json.dumps(str(tmp_path / "async" / "iter_8")))
    for key in blocking:
        assert torch.equal(resumed[key], blocking[key]), key


def test_a_rank_killed_during_an_async_save_leaves_a_resumable_work_dir(tmp_path):
    work_dir = tmp_path / "work"
    port = free_port()
    args = [str(port), str(work_dir), "fsdp", "4", ASYNC, "signal_during_save=" + json.dumps({"at": 8})]
    procs = [
        subprocess.Popen([sys.executable, "-W", "ignore", str(JOB), str(rank), "2", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    try:
        out, _ = procs[0].communicate(timeout=240)
        assert procs[0].returncode == -signal.SIGKILL, out
    finally:
        for proc in procs:  # rank 1 waits for its peer forever: stop it as torchrun would
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    names = os.listdir(work_dir)
    assert "iter_4" in names and "iter_8" not in names
    assert any(name.startswith(".iter_8.tmp-") for name in names)  # the unfinished save
    assert (work_dir / "last_checkpoint").read_text() == "iter_4"

    resumed = train(work_dir, "fsdp", 2, 4, ASYNC, "resume=true")
    log = log_text(work_dir)
    assert f"resumed from {work_dir / 'iter_4'} at epoch 0, iter 4" in log
    assert not any(name.startswith(".iter_8.tmp-") for name in os.listdir(work_dir))
    uninterrupted = train(tmp_path / "uninterrupted", "fsdp", 2, 4)
    for key in uninterrupted:
        assert torch.equal(resumed[key], uninterrupted[key]), key


def test_sigterm_during_an_async_save_waits_for_it_then_saves_where_training_stopped(tmp_path):
    work_dir = tmp_path / "work"
    signal_cfg = json.dumps({"at": 8, "signal": "SIGTERM", "every_rank": True})
    # Ranks agree on a stop at doubling intervals (iterations 1, 2, 4, 8, 16 when they are
    # fast): a run long enough to reach one after the signal.
    longer = "train_cfg=" + json.dumps({"by_epoch": False, "max_iters": 24})
    args = [str(free_port()), str(work_dir), "fsdp", "4", ASYNC, longer, "signal_during_save=" + signal_cfg]
    procs = [
        subprocess.Popen([sys.executable, "-W", "ignore", str(JOB), str(rank), "2", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in range(2)
    ]
    try:
        outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert [proc.returncode for proc in procs] == [128 + signal.SIGTERM] * 2, outputs
    log = log_text(work_dir)
    stopped = re.search(r"SIGTERM: training stopped after iteration (\d+); checkpoint: (\S+)\. Resume", log)
    assert stopped, log
    stop_iter, path = int(stopped.group(1)), stopped.group(2)
    assert 8 <= stop_iter < 24 and path == str(work_dir / f"iter_{stop_iter}")
    # The async save of iteration 8 was finished, then the stand-in of the stop was written.
    verify_checkpoint_dir(str(work_dir / "iter_8"))
    verify_checkpoint_dir(path)
    assert (work_dir / "last_checkpoint").read_text() == f"iter_{stop_iter}"
    assert not [name for name in os.listdir(work_dir) if ".tmp-" in name]
    train(work_dir, "fsdp", 2, 4, ASYNC, longer, "resume=true")
    assert f"resumed from {path} at epoch {stop_iter // 6}, iter {stop_iter}" in log_text(work_dir)
