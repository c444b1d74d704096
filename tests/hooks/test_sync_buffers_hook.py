"""SyncBuffersHook: buffers become their mean over two real gloo processes after a training
epoch (and before a validation epoch that no training epoch synchronised); a no-op alone.

This file is also the worker script: ``python test_sync_buffers_hook.py RANK WORLD STORE OUT``.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

WORLD_SIZE = 2
TIMEOUT_S = 120


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.fc = nn.Linear(3, 1)
        self.register_buffer("scale", torch.zeros(2, dtype=torch.float64))  # another dtype group


class FakeRunner:
    def __init__(self, model: nn.Module) -> None:
        self.model = model


def _set_rank_buffers(model: nn.Module, rank: int) -> None:
    with torch.no_grad():
        model.bn.running_mean.fill_(float(rank + 1))  # 1 and 2: mean 1.5
        model.bn.running_var.fill_(10.0 * (rank + 1))  # 10 and 20: mean 15
        model.bn.num_batches_tracked.fill_(7)  # equal on both: stays 7
        model.scale.fill_(rank * 4.0)  # 0 and 4: mean 2


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in model.named_buffers()}


def _worker(rank: int, world_size: int, store: str, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from minirunner.hooks import SyncBuffersHook

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size)
    hook = SyncBuffersHook()
    model = DistributedDataParallel(Net())  # broadcasts rank 0's buffers: set ours after
    runner = FakeRunner(model)
    hook.before_run(runner)
    inner = model.module
    results = {}

    _set_rank_buffers(inner, rank)
    hook.after_train_epoch(runner)
    results["after_train_epoch"] = _snapshot(inner)

    _set_rank_buffers(inner, rank)
    hook.before_val_epoch(runner)  # right after a training epoch: already synchronised
    results["first_val_epoch"] = _snapshot(inner)

    hook.before_val_epoch(runner)  # no training epoch since (an iteration-based loop)
    results["second_val_epoch"] = _snapshot(inner)
    torch.save(results, out)
    del model, runner, inner
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.multiprocess
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_buffers_are_averaged_over_processes(tmp_path: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    outs = [tmp_path / f"rank{rank}.pt" for rank in range(WORLD_SIZE)]
    from runner_support import run_ranks  # here: this file is also the worker script

    run_ranks(__file__, [WORLD_SIZE, tmp_path / "store", tmp_path / "rank{rank}.pt"], WORLD_SIZE, TIMEOUT_S, env)

    mean = {"bn.running_mean": 1.5, "bn.running_var": 15.0, "bn.num_batches_tracked": 7, "scale": 2.0}
    for rank, out in enumerate(outs):
        results = torch.load(out, weights_only=True)
        for stage in ("after_train_epoch", "second_val_epoch"):
            for name, value in mean.items():
                assert torch.all(results[stage][name] == value), (rank, stage, name, results[stage][name])
        assert results["after_train_epoch"]["scale"].dtype == torch.float64
        # Not synchronised again right after the training epoch: each rank keeps its own.
        assert torch.all(results["first_val_epoch"]["bn.running_mean"] == float(rank + 1))


def test_single_process_is_a_no_op():
    from minirunner.hooks import SyncBuffersHook
    from minirunner.registry import HOOKS

    hook = HOOKS.build(dict(type="SyncBuffersHook"))
    assert isinstance(hook, SyncBuffersHook) and hook.priority == "NORMAL"
    assert hook.distributed is False and hook.called_in_train is False
    model = Net()
    _set_rank_buffers(model, 1)
    before = _snapshot(model)
    runner = FakeRunner(model)
    hook.before_run(runner)
    hook.after_train_epoch(runner)
    hook.before_val_epoch(runner)
    assert all(torch.equal(before[k], v) for k, v in _snapshot(model).items())
    assert hook.get_triggered_stages() == ["before_run", "after_train_epoch", "before_val_epoch"]


def test_added_through_default_hooks(tmp_path):
    from minirunner.hooks import SyncBuffersHook
    from minirunner.runner import Runner
    from runner_support import loader_cfg

    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(8, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, sync_buffer=dict(type="SyncBuffersHook")),
    )
    runner.train()
    assert sum(isinstance(hook, SyncBuffersHook) for hook in runner.hooks) == 1


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
