"""Running the strategy tests' training job (fsdp_job.py) and comparing its weights."""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from runner_support import run_ranks

JOB = Path(__file__).with_name("fsdp_job.py")


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


def log_text(work_dir: Path) -> str:
    """Rank 0's log of the latest run in ``work_dir`` (log folders are named by start time)."""
    return sorted(work_dir.glob("*/*.log"))[-1].read_text()
