"""Memory per rank with FSDP2 vs DDP on 2 gloo processes, and how long the training loop waits
for an asynchronous vs a blocking sharded save.

    .venv-fsdp/bin/python benchmarks/fsdp_memory.py [--dim 1536] [--blocks 12]

The model is a stack of MLP blocks (``blocks * 2`` linear layers of ``dim x dim``; about 226 MB
of float32 parameters by default) trained with AdamW for a few iterations on each strategy.
Printed per rank: the bytes of parameters + gradients + optimizer state this rank holds (its
shards under FSDP), and the process's peak RSS (on a GPU: ``torch.cuda.max_memory_allocated``).
The peak RSS includes building the whole model on the CPU before sharding it (FSDPStrategy
builds it whole, then shards it), so the held bytes show the saving; the RSS after training
shows what the allocator kept. ``fsdp-meta`` is FSDPStrategy with ``init_device='meta'``
(each block's shard kept as soon as it is built); "peak RSS after build" compares what building
the model costs each rank's CPU memory. Needs NumPy
(the ``fsdp`` extra), like FSDPStrategy itself.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402


def _model_cfg(dim: int, blocks: int) -> dict:
    return dict(type="BenchMLP", dim=dim, blocks=blocks)


def _register_model() -> None:
    import torch.nn.functional as F

    from minirunner.model import BaseModel
    from minirunner.registry import MODELS

    class MLPBlock(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.up, self.down = nn.Linear(dim, dim), nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.down(F.gelu(self.up(x)))

    @MODELS.register_module(force=True)
    class BenchMLP(BaseModel):
        def __init__(self, dim: int, blocks: int) -> None:
            super().__init__()
            self.inp = nn.Linear(16, dim)
            self.blocks = nn.Sequential(*[MLPBlock(dim) for _ in range(blocks)])
            self.head = nn.Linear(dim, 3)

        def forward(self, inputs, data_samples=None, mode="tensor"):
            logits = self.head(self.blocks(self.inp(inputs)))
            return dict(loss=F.cross_entropy(logits, data_samples)) if mode == "loss" else logits


def _local_bytes(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def _held_bytes(runner) -> int:
    """Parameters, gradients and optimizer state this rank holds."""
    optimizer = runner.optim_wrapper.optimizer
    total = 0
    for param in runner.strategy.unwrap(runner.model).parameters():
        total += _local_bytes(param)
        if param.grad is not None:
            total += _local_bytes(param.grad)
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                total += _local_bytes(value)
    return total


def _peak_bytes() -> int:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_now() -> int:
    """This process's resident memory now (Linux), 0 where unknown."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker(rank: int, port: int, strategy: str, dim: int, blocks: int, work_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    _register_model()
    from minirunner.checkpoint import wait_for_checkpoint_writes
    from minirunner.runner import Runner

    cfg = dict(
        model=_model_cfg(dim, blocks),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=64, num_features=16, num_classes=3),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=4,
        ),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-4)),
        default_hooks=dict(checkpoint=None, logger=dict(interval=100)),
        launcher="pytorch",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        log_level="WARNING",
    )
    if strategy in ("fsdp", "fsdp-meta"):
        cfg["strategy"] = dict(type="FSDPStrategy", shard=dict(blocks=["MLPBlock"]))
    if strategy == "fsdp-meta":
        cfg["strategy"]["init_device"] = "meta"
    runner = Runner.from_cfg(cfg)
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the model is built and sharded
    runner.train()
    result = dict(strategy=strategy, rank=rank, held=_held_bytes(runner), peak=_peak_bytes(), rss=_rss_now(),
                  build_peak=build_peak)
    if strategy == "fsdp":
        waits = {}
        for name, background in (("blocking", False), ("async", True), ("blocking2", False), ("async2", True)):
            torch.distributed.barrier()
            start = time.perf_counter()
            runner.save_checkpoint(work_dir, f"iter_{name}", by_epoch=False, background=background)
            waits[name] = time.perf_counter() - start
            wait_for_checkpoint_writes()
        result["wait_blocking"] = min(waits["blocking"], waits["blocking2"])
        result["wait_async"] = min(waits["async"], waits["async2"])
    print("RESULT " + json.dumps(result), flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(strategy: str, dim: int, blocks: int) -> list[dict]:
    with tempfile.TemporaryDirectory() as work_dir:
        port = _free_port()
        procs = [
            subprocess.Popen(
                [sys.executable, "-W", "ignore", __file__, "--worker", str(rank), str(port), strategy, str(dim), str(blocks), work_dir],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for rank in range(2)
        ]
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=900)
            if proc.returncode != 0:
                raise SystemExit(f"{strategy} rank failed:\n{out}")
            results += [json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")]
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        rank, port, strategy, dim, blocks, work_dir = sys.argv[2:8]
        worker(int(rank), int(port), strategy, int(dim), int(blocks), work_dir)
        return
    parser = argparse.ArgumentParser(description="FSDP2 vs DDP memory per rank, async vs blocking save")
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--blocks", type=int, default=12)
    args = parser.parse_args()
    params = (16 * args.dim + args.dim) + args.blocks * 2 * (args.dim * args.dim + args.dim) + (args.dim * 3 + 3)
    print(f"model: {params / 1e6:.1f}M parameters, {params * 4 / 2**20:.0f} MiB in float32; AdamW; 2 gloo processes")
    mib = 2**20
    memory = "GPU max allocated" if torch.cuda.is_available() else "peak RSS"
    held = {}
    for strategy in ("ddp", "fsdp", "fsdp-meta"):
        for result in sorted(run(strategy, args.dim, args.blocks), key=lambda r: r["rank"]):
            held.setdefault(strategy, []).append(result["held"])
            line = (f"{strategy:9s} rank {result['rank']}: params+grads+optimizer state held {result['held'] / mib:8.0f} MiB, "
                    f"peak RSS after build {result['build_peak'] / mib:6.0f} MiB, "
                    f"{memory} {result['peak'] / mib:6.0f} MiB, RSS after training {result['rss'] / mib:6.0f} MiB")
            if "wait_async" in result:
                line += f"; the loop waits {result['wait_blocking']:.2f} s for a blocking save, {result['wait_async']:.2f} s for an async one"
            print(line)
    print(f"FSDP2 / DDP held per rank: {sum(held['fsdp']) / sum(held['ddp']):.2f}")


if __name__ == "__main__":
    main()
