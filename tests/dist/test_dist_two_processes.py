"""minirunner.dist and the Runner's rank handling with two real processes (gloo).

Both processes get the environment torchrun would give them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT) and join through ``launcher='pytorch'``, as under torchrun.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

TIMEOUT_S = 150

_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import torch

    from minirunner import dist
    from minirunner.runner import Runner

    torch.set_num_threads(1)
    work = sys.argv[1]
    model = dict(type='MLPClassifier', in_features=4, hidden_dims=(8,), num_classes=2)
    runner = Runner(model=model, work_dir=os.path.join(work, 'shared'), launcher='pytorch',
                    env_cfg=dict(dist_cfg=dict(backend='gloo', timeout=60)))
    rank = dist.get_rank()

    # Rank helpers.
    assert dist.is_distributed() and dist.get_world_size() == 2
    assert rank == int(os.environ['RANK']) and dist.get_local_rank() == rank
    assert dist.is_main_process() == (rank == 0)
    assert (runner.rank, runner.world_size) == (rank, 2)

    # Objects of different sizes on each rank.
    mine = {'rank': rank, 'payload': 'x' * (10 + 1000 * rank)}
    assert dist.broadcast_object(mine, src=0) == {'rank': 0, 'payload': 'x' * 10}
    assert dist.broadcast_object(mine, src=1) == {'rank': 1, 'payload': 'x' * 1010}
    gathered = dist.all_gather_object(mine)
    assert gathered == [{'rank': 0, 'payload': 'x' * 10}, {'rank': 1, 'payload': 'x' * 1010}]
    assert dist.all_gather_object(None) == [None, None]
    total = dist.all_reduce(torch.tensor([1.0 + rank, 10.0 * rank]), op='sum')
    assert total.tolist() == [3.0, 10.0], total
    mean = dist.all_reduce(torch.tensor([1.0 + rank, 10.0 * rank]), op='mean')
    assert mean.tolist() == [1.5, 5.0], mean

    @dist.master_only
    def write():
        return 'written'

    assert write() == ('written' if rank == 0 else None)
    dist.barrier()

    # A seed left to chance is drawn by rank 0 and shared; the timestamp (and so the log
    # folder) too.
    seeds = dist.all_gather_object(runner.seed)
    assert seeds[0] == seeds[1], seeds
    assert len(set(dist.all_gather_object(runner.timestamp))) == 1
    # diff_rank_seed: rank r uses seed + r.
    other = Runner(model=model, work_dir=os.path.join(work, 'shared'), launcher='pytorch',
                   randomness=dict(seed=7, diff_rank_seed=True))
    assert dist.all_gather_object(other.seed) == [7, 8]
    # The model is wrapped, and both ranks start from rank 0's weights.
    assert type(other.model).__name__ == 'MiniDistributedDataParallel'
    first = other.model.module.net[1].weight.detach()
    firsts = dist.all_gather_object(first)
    assert torch.equal(firsts[0], firsts[1])
    dist.barrier()
    if rank == 0:
        # Only rank 0 made a log folder and a log file (two runners: two folders at most).
        logs = [name for folder in os.listdir(os.path.join(work, 'shared'))
                for name in os.listdir(os.path.join(work, 'shared', folder)) if name.endswith('.log')]
        assert 1 <= len(logs) <= 2, logs

    print('OK', rank)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.multiprocess
@pytest.mark.timeout(TIMEOUT_S + 30)
def test_helpers_seeds_and_wrapping_over_two_ranks(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(_SCRIPT)
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(
            [sys.executable, "-W", "ignore", str(script), str(tmp_path / "work")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        ))
    try:
        for rank, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=TIMEOUT_S)
            assert proc.returncode == 0, out[-4000:]
            assert f"OK {rank}" in out
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
