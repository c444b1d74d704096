"""``compile`` under DDP (a one-process gloo group, in process): the module inside the wrapper
runs compiled, dynamo's DDPOptimizer splits its graph by DDP's buckets, and training ends
where the eager DDP run ends."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as torch_dist
from torch._dynamo.backends.distributed import DDPOptimizer

from minirunner.model import MiniDistributedDataParallel
from minirunner.model.compile import is_compiled
from minirunner.runner import Runner
from runner_support import loader_cfg


@pytest.fixture
def torchrun_env(monkeypatch, tmp_path):
    """torchrun's environment for a job of one process; the group is destroyed after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "not-used"))
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "not-used"))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _train(work_dir, **extra) -> Runner:
    runner = Runner.from_cfg(dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=3),
        work_dir=str(work_dir),
        launcher="pytorch",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        train_dataloader=loader_cfg(16, 4, num_classes=3),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), accumulative_counts=2),
        randomness=dict(seed=1),
        **extra,
    ))
    runner.train()
    return runner


def test_compiled_module_runs_inside_ddp_with_the_ddp_optimizer(tmp_path, torchrun_env, monkeypatch):
    splits = []
    real = DDPOptimizer.compile_fn
    monkeypatch.setattr(DDPOptimizer, "compile_fn", lambda self, *a, **k: splits.append(1) or real(self, *a, **k))

    eager = _train(tmp_path / "eager")
    torch_dist.destroy_process_group()
    compiled = _train(tmp_path / "compiled", compile=dict(backend="aot_eager"))

    assert type(compiled.model) is MiniDistributedDataParallel and is_compiled(compiled.model)
    assert compiled.model.module._compiled_call_impl is not None  # the inner module, not the wrapper
    assert splits, "dynamo did not see DDP: the graph was not split by buckets"
    for key, value in eager.model.module.state_dict().items():
        torch.testing.assert_close(compiled.model.module.state_dict()[key], value, atol=1e-5, rtol=0)
    assert all("_orig_mod" not in key for key in torch.load(tmp_path / "compiled" / "epoch_1.pth")["state_dict"])
