"""Gradient accumulation under DDP: all-reduce only on iterations that step.

Two gloo processes train a DDP-wrapped model with ``accumulative_counts=3`` over 7
iterations. A DDP communication hook counts all-reduces; they must happen only on the
iterations that step (2, 5 and 6). The final weights must equal a single-process loop
over the same global batches, written out by hand.

This file is also the worker script: ``python test_no_sync_ddp.py RANK WORLD STORE OUT``.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

WORLD_SIZE = 2
ACCUMULATE = 3
ITERS = 7
STEP_ITERS = [2, 5, 6]  # windows of 3, 3 and the short last one of 7 % 3 = 1
GLOBAL_BATCH = 8
TIMEOUT_S = 120


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1))


def _global_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(123)
    return [(torch.randn(GLOBAL_BATCH, 4, generator=generator),
             torch.randn(GLOBAL_BATCH, 1, generator=generator)) for _ in range(ITERS)]


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _worker(rank: int, world_size: int, store: str, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
    from torch.nn.parallel import DistributedDataParallel

    from minirunner.optim.wrappers import OptimWrapper

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                            world_size=world_size)
    model = DistributedDataParallel(_model())
    all_reduces = [0]

    def counting_hook(state, bucket):
        all_reduces[0] += 1
        return allreduce_hook(state, bucket)

    model.register_comm_hook(None, counting_hook)
    wrapper = OptimWrapper(_optimizer(model), accumulative_counts=ACCUMULATE)
    wrapper.initialize_count_status(model, 0, ITERS)
    per_iter = []
    local = GLOBAL_BATCH // world_size
    for x, y in _global_batches():
        x, y = x[rank * local:(rank + 1) * local], y[rank * local:(rank + 1) * local]
        with wrapper.optim_context(model):
            pred = model(x)
        wrapper.update_params(F.mse_loss(pred, y))
        per_iter.append(all_reduces[0])
    torch.save({"all_reduces": per_iter,
                "weights": {k: v.detach().clone() for k, v in model.module.state_dict().items()}},
               out)
    # Free DDP (it holds the process group) while Python is fully alive: a gloo process group
    # left to the interpreter's last collection can abort the process at exit.
    del model
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def _single_process_reference() -> dict[str, torch.Tensor]:
    model = _model()
    optimizer = _optimizer(model)
    for i, (x, y) in enumerate(_global_batches()):
        window = ACCUMULATE if i < ITERS - ITERS % ACCUMULATE else ITERS % ACCUMULATE
        (F.mse_loss(model(x), y) / window).backward()
        if i in STEP_ITERS:
            optimizer.step()
            optimizer.zero_grad()
    return model.state_dict()


@pytest.mark.multiprocess
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_all_reduces_only_on_stepping_iterations(tmp_path: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    outs = [tmp_path / f"rank{rank}.pt" for rank in range(WORLD_SIZE)]
    from runner_support import run_ranks  # here: this file is also the worker script

    run_ranks(__file__, [WORLD_SIZE, tmp_path / "store", tmp_path / "rank{rank}.pt"], WORLD_SIZE, TIMEOUT_S, env)

    reference = _single_process_reference()
    for out in outs:
        result = torch.load(out, weights_only=True)
        counts = result["all_reduces"]
        # One bucket for this small model: exactly one all-reduce per stepping iteration.
        increments = [b - a for a, b in zip([0] + counts[:-1], counts)]
        assert increments == [1 if i in STEP_ITERS else 0 for i in range(ITERS)]
        for name, value in reference.items():
            torch.testing.assert_close(result["weights"][name], value, rtol=0, atol=1e-6)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
