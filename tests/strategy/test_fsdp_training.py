"""FSDP2 on 2 gloo processes trains like DDP and like one process with the same global batch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

from runner_support import run_ranks

JOB = Path(__file__).with_name("fsdp_job.py")
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.usefixtures("fsdp_environment")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train(work_dir: Path, mode: str, world_size: int, batch_size: int, *extra: str, timeout: float = 240) -> dict:
    """Run the job; return rank 0's final full weights."""
    args = [world_size, free_port(), work_dir, mode, batch_size, *extra]
    outputs = run_ranks(JOB, args, world_size=world_size, timeout=timeout)
    assert all("strategy:" in out for out in outputs), outputs
    return torch.load(work_dir / "final.pt", weights_only=True)


def assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)


def test_fsdp_equals_ddp_and_one_process(tmp_path):
    fsdp = train(tmp_path / "fsdp", "fsdp", 2, 4)
    ddp = train(tmp_path / "ddp", "ddp", 2, 4)
    single = train(tmp_path / "single", "single", 1, 8)
    initial = torch.load(tmp_path / "fsdp" / "initial.pt", weights_only=True)
    assert_close(initial, torch.load(tmp_path / "single" / "initial.pt", weights_only=True))
    assert_close(fsdp, ddp)
    assert_close(fsdp, single)
    # The runs trained: the weights moved away from their initial values.
    assert any((fsdp[key] - initial[key]).abs().max() > 1e-3 for key in fsdp)
    # Checkpoints are DCP directories: every rank's shard, the metadata and our state file.
    names = sorted(os.listdir(tmp_path / "fsdp" / "iter_12"))
    assert names == [".metadata", "__0_0.distcp", "__1_0.distcp", "state.pth"]
    assert (tmp_path / "fsdp" / "last_checkpoint").read_text() == "iter_12"
