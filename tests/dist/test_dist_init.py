"""init_dist in one process: backend choice, the NCCL fallback, and config errors."""

from __future__ import annotations

import datetime
import socket

import pytest
import torch
import torch.distributed as torch_dist

from minirunner.dist import get_rank, get_world_size, init_dist, is_distributed
from minirunner.utils import ConfigError


@pytest.fixture
def torchrun_env(monkeypatch):
    """torchrun's environment for a job of one process; the group is destroyed after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    values = dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def test_none_does_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    init_dist("none")
    assert not is_distributed()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback happens only without CUDA")
def test_nccl_without_cuda_falls_back_to_gloo(torchrun_env):
    with pytest.warns(UserWarning, match=r"backend='nccl' needs CUDA, which this machine lacks; using 'gloo'"):
        init_dist("pytorch", backend="nccl")
    assert torch_dist.get_backend() == "gloo"
    assert (get_rank(), get_world_size()) == (0, 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU default")
def test_default_backend_on_cpu_is_gloo_and_timeout_is_passed(torchrun_env, monkeypatch):
    calls = []
    real = torch_dist.init_process_group

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch_dist, "init_process_group", spy)
    init_dist("pytorch", timeout=42)
    assert torch_dist.get_backend() == "gloo"
    assert calls == [dict(backend="gloo", timeout=datetime.timedelta(seconds=42))]


def test_existing_group_is_kept(torchrun_env, monkeypatch):
    torch_dist.init_process_group("gloo")
    group = torch_dist.distributed_c10d._get_default_group()
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name)
    init_dist("pytorch", backend="nccl")  # no environment needed, no second group
    assert torch_dist.distributed_c10d._get_default_group() is group


def test_unknown_backend(torchrun_env):
    with pytest.raises(ConfigError, match=r"^env_cfg.dist_cfg.backend: 'ncl' is not a process-group backend\. Did you mean 'nccl'"):
        init_dist("pytorch", backend="ncl")
    assert not is_distributed()


@pytest.mark.parametrize("timeout", [0, -5, "30", True])
def test_bad_timeout(torchrun_env, timeout):
    with pytest.raises(ConfigError, match=r"^env_cfg.dist_cfg.timeout: must be a positive number of seconds"):
        init_dist("pytorch", backend="gloo", timeout=timeout)
    assert not is_distributed()
