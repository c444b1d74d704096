"""Training the digits default under torchrun, two CPU processes on gloo, started as a user would.

Three runs share the work (each start costs seconds):

1. the reference: ``tools/train.py`` in one process, global batch 16, 3 epochs;
2. ``python -m torch.distributed.run --nproc_per_node=2 tools/train.py ... --launcher pytorch``
   with 8 samples per process (the same global batch of 16), where rank 1 raises at the start
   of the third epoch: the whole job must exit non-zero, within the timeout;
3. ``tools/dist_train.sh CONFIG 2 --resume``: resumes the crashed run from its epoch-2
   checkpoint and finishes the third epoch.

The model is the digits MLP without dropout, and the training set is the first 336 digits,
a size the global batch divides (21 steps per epoch), so the two-process run must follow the
one-process run's weights (to 1e-5), as DDP averages the gradients of equal halves.
Gradient accumulation over 2 iterations is on (63 iterations: windows of 2 and a last one
of 1), and a DDP communication hook counts the all-reduces. A probe module (written below,
imported through ``custom_imports``) records which samples each rank loads and when the
gradients are all-reduced.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minirunner.dataset import DigitsDataset

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 240
TRAIN_SIZE = 336
GLOBAL_BATCH = 16
EPOCHS = 3
ITERS_PER_EPOCH = TRAIN_SIZE // GLOBAL_BATCH  # 21
MAX_ITERS = EPOCHS * ITERS_PER_EPOCH  # 63

PROBE = textwrap.dedent(
    """
    # Test helpers for tests/tools/test_torchrun_digits.py.
    import json
    import os
    import warnings

    import torch.distributed as torch_dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from minirunner.dataset import DigitsDataset
    from minirunner.hooks import Hook
    from minirunner.registry import DATASETS, HOOKS

    SEEN = []


    @DATASETS.register_module()
    class ProbeDigits(DigitsDataset):
        # The first `size` training digits; remembers every index it is asked for.
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size = size

        def __len__(self):
            return self.size

        def __getitem__(self, index):
            SEEN.append(int(index))
            return super().__getitem__(index)


    @HOOKS.register_module()
    class ProbeHook(Hook):
        priority = 'LOWEST'

        def __init__(self, out_dir, crash_epoch=None):
            self.out_dir = out_dir
            self.crash_epoch = crash_epoch
            self.iteration = None
            self.reduced_at = []

        def before_train(self, runner):
            warnings.warn(f'probe: a library warning on rank {runner.rank}')
            if hasattr(runner.model, 'register_comm_hook'):
                runner.model.register_comm_hook(None, self._count)

        def _count(self, state, bucket):
            self.reduced_at.append(self.iteration)
            return allreduce_hook(state, bucket)

        def before_train_epoch(self, runner):
            if runner.epoch == self.crash_epoch:
                # Rank 0 has written the last checkpoint once every rank is here.
                torch_dist.barrier()
                if runner.rank == 1:
                    raise RuntimeError('probe: rank 1 fails on purpose')
            SEEN.clear()

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.iteration = runner.iter

        def after_train_epoch(self, runner):
            os.makedirs(self.out_dir, exist_ok=True)
            path = os.path.join(self.out_dir, f'rank{runner.rank}_epoch{runner.epoch}.json')
            with open(path, 'w') as handle:
                json.dump(dict(seen=SEEN, reduced_at=self.reduced_at, world=runner.world_size), handle)
            SEEN.clear()
            self.reduced_at = []
    """
)

CONFIG = textwrap.dedent(
    f"""
    _base_ = [{str(REPO / 'configs' / 'digits_mlp.py')!r}]
    custom_imports = dict(imports=['dist_probe'], allow_failed_imports=False)
    model = dict(hidden_dims=(32,))  # no dropout: the two runs must compute the same thing
    train_dataloader = dict(dataset=dict(type='ProbeDigits', size={TRAIN_SIZE}))
    optim_wrapper = dict(optimizer=dict(lr=0.05), accumulative_counts=2)
    auto_scale_lr = dict(base_batch_size=8)  # x2 in both runs: 1 x 16 / 8 and 2 x 8 / 8
    train_cfg = dict(max_epochs={EPOCHS}, val_interval=1)
    default_hooks = dict(logger=dict(interval=5))
    env_cfg = dict(dist_cfg=dict(timeout=60))  # a lost rank fails a collective, never hangs it
    """
)


def _variant(batch_size: int, probe_dir: Path, crash_epoch: int | None = None) -> str:
    return textwrap.dedent(
        f"""
        _base_ = ['base_digits.py']
        train_dataloader = dict(batch_size={batch_size})
        custom_hooks = [dict(type='ProbeHook', out_dir={str(probe_dir)!r}, crash_epoch={crash_epoch!r})]
        """
    )


def _run(command: list[str], env: dict, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group, killing the whole group (torchrun and its
    workers) if it outlives ``timeout``."""
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(command)} did not finish within {timeout} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("torchrun")
    (folder / "dist_probe.py").write_text(PROBE)
    (folder / "base_digits.py").write_text(CONFIG)
    (folder / "single.py").write_text(_variant(GLOBAL_BATCH, folder / "probe_single"))
    (folder / "crash.py").write_text(_variant(GLOBAL_BATCH // 2, folder / "probe_dist", crash_epoch=2))
    (folder / "dist.py").write_text(_variant(GLOBAL_BATCH // 2, folder / "probe_dist"))
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, PYTHON=sys.executable)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    train = str(REPO / "tools" / "train.py")
    single = _run(
        [sys.executable, train, str(folder / "single.py"), "--work-dir", str(folder / "single"), "--auto-scale-lr"],
        env,
    )
    assert single.returncode == 0, single.stdout[-4000:]
    crashed = _run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
         f"--master_port={_free_port()}", train, str(folder / "crash.py"), "--launcher", "pytorch",
         "--work-dir", str(folder / "dist"), "--auto-scale-lr"],
        env,
    )
    after_crash = sorted(path.name for path in (folder / "dist").iterdir() if path.is_file())
    resumed = _run(
        [str(REPO / "tools" / "dist_train.sh"), str(folder / "dist.py"), "2", "--work-dir", str(folder / "dist"),
         "--auto-scale-lr", "--resume"],
        env,
    )
    assert resumed.returncode == 0, resumed.stdout[-6000:]
    return dict(folder=folder, single=single, crashed=crashed, after_crash=after_crash, resumed=resumed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe(folder: Path, name: str, rank: int, epoch: int) -> dict:
    return json.loads((folder / name / f"rank{rank}_epoch{epoch}.json").read_text())


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(4 * TIMEOUT_S)]


def test_a_failing_rank_fails_the_whole_job(runs):
    crashed = runs["crashed"]
    assert crashed.returncode != 0, crashed.stdout[-4000:]
    assert "probe: rank 1 fails on purpose" in crashed.stdout
    # The first two epochs were saved before the failure; rank 0 got no further.
    assert runs["after_crash"] == [".minirunner.lock", "crash.py", "epoch_1.pth", "epoch_2.pth", "last_checkpoint"]
    assert not re.search(r"Epoch\(train\) +\[3\]", crashed.stdout)


def test_each_sample_is_seen_once_per_epoch_across_ranks(runs):
    folder = runs["folder"]
    for epoch in range(EPOCHS):  # epochs 0 and 1 from the crashed run, 2 from the resumed one
        shares = [_probe(folder, "probe_dist", rank, epoch)["seen"] for rank in range(2)]
        assert [len(share) for share in shares] == [TRAIN_SIZE // 2] * 2
        assert sorted(shares[0] + shares[1]) == list(range(TRAIN_SIZE))
        # torch's DistributedSampler is the reference for the order: shuffled with
        # seed + epoch (seed 0 from the config), rank r taking every second index.
        for rank, share in enumerate(shares):
            reference = torch.utils.data.DistributedSampler(
                range(TRAIN_SIZE), num_replicas=2, rank=rank, shuffle=True, seed=0
            )
            reference.set_epoch(epoch)
            assert share == list(reference)


def test_weights_match_one_process_with_the_same_global_batch(runs):
    folder = runs["folder"]
    # epoch_2 was written by the run that crashed afterwards, epoch_3 by the resumed run.
    for epoch in (2, EPOCHS):
        got = _weights(folder / "dist" / f"epoch_{epoch}.pth")
        want = _weights(folder / "single" / f"epoch_{epoch}.pth")
        assert got.keys() == want.keys()
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-5, msg=f"{name}, epoch {epoch}")
    # Training moved the weights: the comparison is not between two untouched models.
    first = _weights(folder / "dist" / "epoch_2.pth")["net.1.weight"]
    last = _weights(folder / "dist" / "epoch_3.pth")["net.1.weight"]
    assert (first - last).abs().max() > 1e-3


def test_resume_continues_from_the_checkpoint_under_torchrun(runs):
    out = runs["resumed"].stdout
    assert "resumed from" in out and "epoch_2.pth at epoch 2, iter 42" in out
    assert not re.search(r"Epoch\(train\) +\[[12]\]", out)  # no epoch trained again
    assert re.search(r"Epoch\(train\) +\[3\]\[20/21\]", out)


def test_gradients_are_all_reduced_only_on_stepping_iterations(runs):
    folder = runs["folder"]
    # accumulative_counts=2 over 63 iterations: steps after iterations 1, 3, ..., 61 and
    # after the last one, 62 (a window of one).
    stepping = [i for i in range(MAX_ITERS) if (i + 1) % 2 == 0 or i + 1 == MAX_ITERS]
    for rank in range(2):
        reduced = []
        for epoch in range(EPOCHS):
            reduced += _probe(folder, "probe_dist", rank, epoch)["reduced_at"]
        buckets = len(reduced) // len(stepping)
        assert buckets >= 1
        assert sorted(set(reduced)) == stepping
        assert len(reduced) == buckets * len(stepping)
    # The single process has no DDP: nothing to count.
    assert _probe(folder, "probe_single", 0, 0)["reduced_at"] == []


def test_only_rank_zero_writes_logs_checkpoints_and_the_config(runs):
    dist = runs["folder"] / "dist"
    log_dirs = sorted(path for path in dist.iterdir() if path.is_dir())
    assert len(log_dirs) == 2  # the crashed run's and the resumed run's
    for log_dir in log_dirs:
        # Rank 1 keeps library warnings in a file of its own instead of printing them.
        assert sorted(p.name for p in log_dir.iterdir()) == [
            f"{log_dir.name}.log", f"{log_dir.name}_rank1_warnings.log", "vis_data"
        ]
        assert "probe: a library warning on rank 1" in (log_dir / f"{log_dir.name}_rank1_warnings.log").read_text()
        assert sorted(p.name for p in (log_dir / "vis_data").iterdir()) == ["config.py", "scalars.json"]
        log = (log_dir / f"{log_dir.name}.log").read_text()
        assert log.count("distributed: 2 processes") == 1
    files = sorted(p.name for p in dist.iterdir() if p.is_file())
    assert files == [".minirunner.lock", "crash.py", "dist.py", "epoch_1.pth", "epoch_2.pth", "epoch_3.pth", "last_checkpoint"]
    assert (dist / "last_checkpoint").read_text().strip() == "epoch_3.pth"
    # Rank 1 logs nothing below a warning: each training line reaches the console once.
    assert len(re.findall(r"Epoch\(train\) +\[3\]\[ *5/21\]", runs["resumed"].stdout)) == 1
    # ... and a warning every rank meets is printed once, by rank 0.
    assert "probe: a library warning on rank 0" in runs["resumed"].stdout
    assert "probe: a library warning on rank 1" not in runs["resumed"].stdout


def test_auto_scale_lr_uses_world_size_times_batch_size(runs):
    out = runs["resumed"].stdout
    assert "lr scaled by 2 = world size 2 x batch size 8 per process / base_batch_size 8" in out
    single = runs["single"].stdout
    assert "lr scaled by 2 = world size 1 x batch size 16 per process / base_batch_size 8" in single


def _val_accuracies(work_dir: Path) -> list[float]:
    values = []
    for log_dir in sorted(path for path in work_dir.iterdir() if path.is_dir()):
        for line in (log_dir / "vis_data" / "scalars.json").read_text().splitlines():
            record = json.loads(line)
            if "accuracy/top1" in record:
                values.append(record["accuracy/top1"])
    return values


def test_validation_accuracy_over_two_ranks_counts_each_sample_once(runs):
    folder = runs["folder"]
    # 359 validation digits: 180 per rank, one of them padding that must not count.
    weights = _weights(folder / "dist" / "epoch_3.pth")
    val = DigitsDataset("val")
    hidden = torch.relu(val.inputs.flatten(1) @ weights["net.1.weight"].T + weights["net.1.bias"])
    logits = hidden @ weights["net.3.weight"].T + weights["net.3.bias"]
    correct = int((logits.argmax(dim=1) == val.labels).sum())
    dist_values = _val_accuracies(folder / "dist")
    assert len(dist_values) == EPOCHS
    assert dist_values[-1] == pytest.approx(correct * 100.0 / len(val), rel=1e-12)
    assert dist_values == pytest.approx(_val_accuracies(folder / "single"), rel=1e-12)
