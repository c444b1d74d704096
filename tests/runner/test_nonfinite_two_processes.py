"""Non-finite losses under two gloo processes: a NaN on one rank makes every rank take the same
decision, with no hang. 'skip' skips the step on both ranks (with and without accumulation);
the default stops both ranks naming the iteration where the NaN first appeared.

This file is also the worker script: ``python test_nonfinite_two_processes.py RANK STORE OUT``.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
import torch

WORLD_SIZE = 2
TIMEOUT_S = 240


def _worker(rank: int, store: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD_SIZE)
    from minirunner.optim.nonfinite import NonFiniteLossError
    from minirunner.runner import Runner
    from test_nonfinite import run_cfg  # this script's folder is on sys.path

    nan_at = {3} if rank == 1 else set()  # rank 0's own losses stay finite
    work = Path(out).parent
    results = {}
    for accumulate in (1, 2):
        runner = Runner(**run_cfg(work / f"skip{accumulate}", 32, nan_at=nan_at, nonfinite=dict(action="skip"),
                                  optim_wrapper=dict(accumulative_counts=accumulate), launcher="pytorch"))
        runner.train()
        results[f"skip{accumulate}"] = {
            "skipped": runner.optim_wrapper.nonfinite.skipped,
            "weight": runner.model.module.fc.weight.detach().clone(),
        }
        del runner
    runner = Runner(**run_cfg(work / "raise", 32, nan_at=nan_at, launcher="pytorch",
                              default_hooks=dict(logger=dict(interval=2))))
    try:
        runner.train()
        results["raise"] = None
    except NonFiniteLossError as error:
        results["raise"] = {"message": str(error), "iteration": error.iteration, "at": runner.iter}
    del runner
    torch.save(results, out)
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.multiprocess
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_a_nan_on_one_rank_is_decided_alike_on_both(tmp_path: Path):
    from runner_support import run_ranks  # here: this file is also the worker script

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    run_ranks(__file__, [tmp_path / "store", tmp_path / "rank{rank}.pt"], WORLD_SIZE, TIMEOUT_S, env)
    results = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in range(WORLD_SIZE)]
    for accumulate in (1, 2):
        key = f"skip{accumulate}"
        assert [r[key]["skipped"] for r in results] == [1, 1], key
        weights = [r[key]["weight"] for r in results]
        assert torch.isfinite(weights[0]).all() and torch.equal(weights[0], weights[1]), key
    for rank, result in enumerate(results):
        found = result["raise"]
        assert found is not None, rank
        # Rank 0's loss turns NaN only at iteration 4 (after the all-reduce of rank 1's NaN
        # gradients); both ranks name iteration 3, rank 1's loss terms, at the log line of 4.
        assert found["iteration"] == 3 and found["at"] == 3, found
        assert found["message"].startswith("non-finite loss at iteration 3 (epoch 1, batch 3 of 4): loss=nan, loss_cls=nan;")


if __name__ == "__main__":
    _worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
