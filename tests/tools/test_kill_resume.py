"""Kill training anywhere, resume with `--resume auto`, and get the uninterrupted weights bit for bit.

``tools/train.py`` trains the digits default (shuffled, with dropout and gradient
accumulation over 3 iterations) for 2 epochs of 12 iterations, with a checkpoint every 5
iterations (iter_5, 10, 15, 20 and the last, 24; at most 2 kept). A probe module, imported
through ``custom_imports``, kills the process at the iterations a seeded generator picks
(SIGKILL: no chance to clean up), once right after a checkpoint's save began (the fsync and
rename run in the background, so it dies in the middle of them), and slows one checkpoint
write down so that the test can SIGKILL the process while the file is half written. After
every kill all checkpoints on disk must verify and ``--resume auto`` must go on; the last
run must end with exactly the weights, optimizer state and logged losses of a run that was
never interrupted. A second test sends SIGTERM in the middle of an epoch: exit status 143,
a checkpoint, and a resume that ends with the uninterrupted weights.
"""

from __future__ import annotations

import json
import os
import re
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from minirunner.checkpoint import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
SEED = 20240901
TIMEOUT_S = 120
LAST = 24  # 2 epochs of ceil(1438 / 128) = 12 iterations

PROBE = textwrap.dedent(
    """
    # Test helpers for tests/tools/test_kill_resume.py, steered by environment variables.
    import io
    import os
    import signal
    import time

    import torch

    from minirunner.hooks import Hook
    from minirunner.registry import HOOKS

    KILL_AT = int(os.environ.get('KILL_AT_ITER', '0'))
    TERM_AT = int(os.environ.get('TERM_AT_ITER', '0'))
    TERM_RANK = int(os.environ.get('TERM_RANK', '-1'))  # -1: every rank
    SLOW_WRITE = os.environ.get('SLOW_WRITE', '')
    if os.environ.get('AGREE_EVERY_ITERATION'):
        # Under torchrun the ranks agree about once a second; this run is shorter than that.
        import minirunner.runner.loops
        minirunner.runner.loops._AGREE_SECONDS = 0.0


    @HOOKS.register_module()
    class KillSwitch(Hook):
        priority = 'LOWEST'  # after the checkpoint hook: its save has begun when we kill

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter + 1 == TERM_AT and TERM_RANK in (-1, runner.rank):
                os.kill(os.getpid(), signal.SIGTERM)

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)


    if SLOW_WRITE:
        _save = torch.save

        def slow_save(obj, target, *args, **kwargs):
            # The checkpoint named SLOW_WRITE is written 4 KiB at a time, 20 ms apart.
            if isinstance(target, str) and os.path.basename(target).startswith('.' + SLOW_WRITE + '.tmp'):
                buffer = io.BytesIO()
                _save(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                with open(target, 'wb') as handle:
                    for start in range(0, len(data), 4096):
                        handle.write(data[start:start + 4096])
                        handle.flush()
                        time.sleep(0.02)
                return None
            return _save(obj, target, *args, **kwargs)

        torch.save = slow_save
    """
)

CONFIG = textwrap.dedent(
    f"""
    _base_ = [{str(REPO / 'configs' / 'digits_mlp.py')!r}]
    custom_imports = dict(imports=['kill_probe'], allow_failed_imports=False)
    model = dict(dropout=0.2)
    train_dataloader = dict(batch_size=128)
    train_cfg = dict(max_epochs=2, val_interval=2)
    optim_wrapper = dict(accumulative_counts=3)
    default_hooks = dict(logger=dict(interval=2),
                         checkpoint=dict(by_epoch=False, interval=5, max_keep_ckpts=2))
    custom_hooks = [dict(type='KillSwitch')]
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kill_resume")
    (folder / "kill_probe.py").write_text(PROBE)
    (folder / "digits_kill.py").write_text(CONFIG)
    return folder


def _start(setup: Path, work: Path, **env: str) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(setup), os.environ.get("PYTHONPATH", "")) if p)
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, **env)
    log = open(work / f"console_{time.monotonic_ns()}.txt", "w")
    return subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "train.py"), str(setup / "digits_kill.py"),
         "--work-dir", str(work), "--resume", "auto"],
        cwd=setup, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )


def _run(setup: Path, work: Path, **env: str) -> int:
    process = _start(setup, work, **env)
    return process.wait(timeout=TIMEOUT_S)


def _console(work: Path) -> str:
    return "".join(path.read_text() for path in sorted(work.glob("console_*.txt")))


def _assert_consistent(work: Path) -> None:
    """Whatever the kill left: every checkpoint verifies and the pointer names a good one."""
    for path in work.glob("*.pth"):
        verify_checkpoint(str(path))
    pointer = work / "last_checkpoint"
    if pointer.exists():
        verify_checkpoint(str(work / pointer.read_text()))  # relative to the work dir


def _logged_losses(work: Path) -> dict[int, set[float]]:
    losses: dict[int, set[float]] = {}
    for path in work.glob("*/vis_data/scalars.json"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "loss" in record:
                losses.setdefault(record["step"], set()).add(record["loss"])
    return losses


def _final(work: Path) -> dict:
    return torch.load(work / f"iter_{LAST}.pth", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(setup) -> Path:
    work = setup / "uninterrupted"
    assert _run(setup, work) == 0, _console(work)[-3000:]
    return work


def _assert_same_result(work: Path, reference: Path) -> None:
    got, want = _final(work), _final(reference)
    for key, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key
    for index, state in want["optimizer"]["state"].items():
        assert torch.equal(got["optimizer"]["state"][index]["momentum_buffer"], state["momentum_buffer"])
    # Every loss any part of the interrupted run logged (steps replayed after a resume
    # included) is the uninterrupted run's.
    expected = _logged_losses(reference)
    for step, values in _logged_losses(work).items():
        assert values == expected[step], step


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigkill_anywhere_then_resume_auto_gives_the_uninterrupted_weights(setup, uninterrupted):
    work = setup / "killed"
    picker = random.Random(SEED)
    first = picker.randint(2, 9)  # before or after the first checkpoint
    second = picker.choice([10, 15])  # as a checkpoint's commit runs in the background
    for kill_at in (first, second):
        assert _run(setup, work, KILL_AT_ITER=str(kill_at)) == -signal.SIGKILL, _console(work)[-3000:]
        _assert_consistent(work)

    # Killed while iter_20.pth is being written.
    process = _start(setup, work, SLOW_WRITE="iter_20.pth")
    deadline = time.monotonic() + TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        partial = list(work.glob(".iter_20.pth.tmp-*"))
        if partial and partial[0].stat().st_size >= 16384:
            process.kill()
            break
        time.sleep(0.005)
    assert process.wait(timeout=30) == -signal.SIGKILL, _console(work)[-3000:]
    assert list(work.glob(".iter_20.pth.tmp-*")) and not (work / "iter_20.pth").exists()
    _assert_consistent(work)
    assert not (work / "last_checkpoint").read_text().endswith("iter_20.pth")

    assert _run(setup, work) == 0, _console(work)[-3000:]
    assert "resumed from" in _console(work)
    _assert_same_result(work, uninterrupted)
    # The half-written file of the dead process was cleaned up; 2 checkpoints are kept.
    assert not list(work.glob(".*.tmp-*"))
    assert sorted(p.name for p in work.glob("iter_*.pth")) == ["iter_20.pth", f"iter_{LAST}.pth"]


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_mid_epoch_exits_143_with_a_checkpoint_and_resumes_exactly(setup, uninterrupted):
    work = setup / "terminated"
    assert _run(setup, work, TERM_AT_ITER="7") == 128 + signal.SIGTERM, _console(work)[-3000:]
    console = _console(work)
    # The iteration in progress was finished, then saved (7: inside epoch 1 and inside an
    # accumulation window) and the log says where.
    assert f"SIGTERM: training stopped after iteration 7; checkpoint: {work / 'iter_7.pth'}" in console
    checkpoint = torch.load(work / "iter_7.pth", weights_only=True)
    assert (checkpoint["loop"]["epoch"], checkpoint["loop"]["iter"]) == (0, 7) and "grads" in checkpoint
    assert _run(setup, work) == 0, _console(work)[-3000:]
    _assert_same_result(work, uninterrupted)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(setup: Path, work: Path, **env: str) -> subprocess.CompletedProcess:
    """tools/train.py under torchrun with 2 CPU processes; the whole group is killed if it hangs."""
    path = os.pathsep.join(p for p in (str(setup), os.environ.get("PYTHONPATH", "")) if p)
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, AGREE_EVERY_ITERATION="1", **env)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(name, None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}", str(REPO / "tools" / "train.py"), str(setup / "digits_kill.py"),
        "--launcher", "pytorch", "--work-dir", str(work), "--resume", "auto",
        "--cfg-options", "env_cfg.dist_cfg.backend=gloo", "env_cfg.dist_cfg.timeout=60",
    ]
    process = subprocess.Popen(command, cwd=setup, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, "")


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_under_torchrun_the_ranks_agree_on_the_iteration_before_saving(setup):
    work = setup / "torchrun"
    # Only rank 1 gets SIGTERM, before iteration 4. Both ranks must stop after the same
    # iteration (a rank that went on would wait forever in DDP's all-reduce), save once
    # (rank 0 writes) and exit with 143. The ranks agree at iterations rank 0 schedules
    # (1, 3, 7, ...: intervals that at most double), so the stop comes at iteration 4 or a
    # little later, always before the run's end at 12.
    stopped = _torchrun(setup, work, TERM_AT_ITER="4", TERM_RANK="1")
    assert stopped.returncode != 0, stopped.stdout[-4000:]
    # torchrun reports the first rank to exit (143); it then stops the other, whose file
    # is already in place: rank 0 waited for it before the ranks' final barrier.
    assert "exitcode  : 143" in stopped.stdout, stopped.stdout[-4000:]
    found = re.findall(r"SIGTERM: training stopped after iteration (\d+); checkpoint: (\S+)\.", stopped.stdout)
    assert len(set(found)) == 1, stopped.stdout[-4000:]  # every rank reports the same stop
    stop_iter, path = int(found[0][0]), found[0][1]
    assert 4 <= stop_iter < 12 and path == str(work / f"iter_{stop_iter}.pth")
    checkpoint = torch.load(path, weights_only=True)
    assert (checkpoint["loop"]["iter"], checkpoint["sampler"]["world_size"]) == (stop_iter, 2)
    # Inside an accumulation window (3) the ranks' partial gradients are saved, averaged.
    assert ("grads" in checkpoint) == (stop_iter % 3 != 0)
    resumed = _torchrun(setup, work)
    assert resumed.returncode == 0, resumed.stdout[-4000:]
    # 128 per rank: 6 iterations per epoch.
    assert f"resumed from {path} at epoch {stop_iter // 6}, iter {stop_iter}" in resumed.stdout
    assert (work / "iter_12.pth").exists()
