"""Resuming sharded (DCP) checkpoints: the same world size bit for bit, 2 -> 1 and 1 -> 2
processes with the global batch kept to 1e-5."""

from __future__ import annotations

import json

import pytest
import torch

from strategy.fsdp_support import assert_close, log_text, train

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("fsdp_environment"),
]


@pytest.fixture(scope="module")
def two_process_run(fsdp_environment, tmp_path_factory):
    """An uninterrupted FSDP run on 2 processes (batch 4 each), checkpoints every 4 iterations."""
    folder = tmp_path_factory.mktemp("two")
    return folder, train(folder, "fsdp", 2, 4)


def resume_from(path) -> str:
    return f"resume={json.dumps(str(path))}"


def test_same_world_size_is_bit_exact(two_process_run, tmp_path):
    folder, final = two_process_run
    resumed = train(tmp_path, "fsdp", 2, 4, resume_from(folder / "iter_4"))
    assert f"resumed from {folder / 'iter_4'} at epoch 0, iter 4" in log_text(tmp_path)
    for key in final:
        assert torch.equal(resumed[key], final[key]), key


def test_two_to_one_process(two_process_run, tmp_path):
    folder, final = two_process_run
    resumed = train(tmp_path, "fsdp", 1, 8, resume_from(folder / "iter_8"))
    assert_close(resumed, final)
    log = log_text(tmp_path)
    assert f"resumed from {folder / 'iter_8'} at epoch 1, iter 8" in log
    assert "world size 1 (the checkpoint's run had 2)" in log
    assert "global batch changes" not in log


def test_one_to_two_processes(tmp_path):
    final = train(tmp_path / "one", "fsdp", 1, 8)
    resumed = train(tmp_path / "two", "fsdp", 2, 4, resume_from(tmp_path / "one" / "iter_4"))
    assert "world size 2 (the checkpoint's run had 1)" in log_text(tmp_path / "two")
    assert_close(resumed, final)


def test_a_changed_global_batch_is_warned_about(two_process_run, tmp_path):
    folder, _ = two_process_run
    train(tmp_path, "fsdp", 1, 4, resume_from(folder / "iter_8"))
    log = log_text(tmp_path)
    assert "the global batch changes from 8 to 4" in log
