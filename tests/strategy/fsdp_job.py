"""One rank of a training job for the strategy tests: ``python fsdp_job.py RANK WORLD_SIZE PORT
WORK_DIR MODE BATCH_SIZE [KEY=JSON ...]``.

MODE is ``fsdp``, ``fsdp-full`` (FSDP writing one-file checkpoints, ``state_dict='full'``),
``fsdp-meta`` (FSDP building the model with ``init_device='meta'``) or ``ddp`` (torchrun-like environment, gloo) or ``single`` (no process group).
A small transformer-like model trains with gradient accumulation, clipping, warm-up then cosine
schedules (and, under FSDP, activation checkpointing of its blocks). Rank 0 writes the initial
and final full weights to ``WORK_DIR/initial.pt`` and ``final.pt``. Extra ``KEY=JSON`` arguments override top-level config keys.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)

from minirunner.hooks import Hook  # noqa: E402
from minirunner.model import BaseModel  # noqa: E402
from minirunner.registry import HOOKS, MODELS  # noqa: E402
from minirunner.runner import Runner  # noqa: E402


class Block(nn.Module):
    """Pre-norm self-attention and MLP with residuals, as in a transformer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        # No bias on q, k, v: the key bias gets a gradient of exactly zero in exact arithmetic,
        # and AdamW turns its rounding noise into full-size steps that differ between runs.
        self.qkv, self.proj = nn.Linear(dim, 3 * dim, bias=False), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm1(x)).chunk(3, dim=-1)
        attention = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        x = x + self.proj(attention @ v)
        return x + self.mlp(self.norm2(x))


@MODELS.register_module(force=True)
class TinyTransformer(BaseModel):
    """Reads 16 features as 4 tokens of 4, two blocks, mean pooling, a linear head."""

    def __init__(self, dim: int = 16, depth: int = 2, num_classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, inputs, data_samples=None, mode="tensor"):
        x = self.embed(inputs.view(inputs.shape[0], 4, 4))
        for block in self.blocks:
            x = block(x)
        logits = self.head(x.mean(dim=1))
        if mode == "loss":
            return dict(loss=F.cross_entropy(logits, data_samples))
        return logits


@HOOKS.register_module(force=True)
class SaveInitialWeights(Hook):
    """Rank 0 writes the weights training starts from to ``WORK_DIR/initial.pt``."""

    def before_train(self, runner) -> None:
        weights = full_weights(runner)
        if runner.rank == 0:
            torch.save(weights, os.path.join(runner.work_dir, "initial.pt"))


@HOOKS.register_module(force=True)
class SignalDuringSave(Hook):
    """Right after the checkpoint of iteration ``at`` started writing in the background, send
    ``signal`` to rank 0 (or to every rank) itself; the shards' writes are slowed down so the
    save is still running then."""

    priority = "LOWEST"  # after the CheckpointHook

    def __init__(self, at: int, signal: str = "SIGKILL", every_rank: bool = False) -> None:
        import torch.distributed.checkpoint as dcp

        self.at, self.signal, self.every_rank = at, signal, every_rank
        original = dcp.FileSystemWriter.write_data

        def slow_write_data(writer, plan, planner):
            time.sleep(3)
            return original(writer, plan, planner)

        dcp.FileSystemWriter.write_data = slow_write_data

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at and (self.every_rank or runner.rank == 0):
            os.kill(os.getpid(), getattr(signal, self.signal))


def config(work_dir: str, mode: str, batch_size: int) -> dict:
    cfg = dict(
        model=dict(type="TinyTransformer"),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=48, num_features=16, num_classes=3),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=batch_size,
        ),
        train_cfg=dict(by_epoch=False, max_iters=12),
        optim_wrapper=dict(
            optimizer=dict(type="AdamW", lr=0.01, weight_decay=0.01),
            accumulative_counts=2,
            clip_grad=dict(max_norm=0.5),
        ),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=4),
            dict(type="CosineAnnealingLR", by_epoch=False, begin=4, end=12),
        ],
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=4), logger=dict(interval=2)),
        custom_hooks=[dict(type="SaveInitialWeights")],
        randomness=dict(seed=0),
        launcher="none" if mode == "single" else "pytorch",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
    )
    if mode in ("fsdp", "fsdp-full", "fsdp-meta"):
        cfg["strategy"] = dict(type="FSDPStrategy", shard=dict(blocks=["Block"]), activation_checkpointing=["Block"])
    if mode == "fsdp-full":
        cfg["strategy"]["state_dict"] = "full"
    if mode == "fsdp-meta":
        cfg["strategy"]["init_device"] = "meta"
    return cfg


def full_weights(runner: Runner) -> dict:
    """Every rank calls it; the whole model's tensors (gathered from the shards under FSDP)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    model = runner.strategy.unwrap(runner.model)
    if runner.strategy.shards_parameters:
        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def main() -> None:
    rank, world_size, port, work_dir, mode, batch_size = sys.argv[1:7]
    if mode != "single":
        os.environ.update(
            RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1", MASTER_PORT=port
        )
    cfg = config(work_dir, mode, int(batch_size))
    for item in sys.argv[7:]:
        key, value = item.split("=", 1)
        value = json.loads(value)
        if key == "checkpoint":
            cfg["default_hooks"]["checkpoint"].update(value)
        elif key == "signal_during_save":
            cfg["custom_hooks"].append(dict(type="SignalDuringSave", **value))
        else:
            cfg[key] = value
    runner = Runner.from_cfg(cfg)
    runner.train()
    weights = full_weights(runner)
    if int(rank) == 0:
        torch.save(weights, os.path.join(work_dir, "final.pt"))
    print(f"strategy: {type(runner.strategy).__name__}")
    # As tools/train.py does: free the runner (and the gloo groups' threads) while Python is
    # fully alive, then leave together; a group left to the interpreter's exit can abort it
    # ("terminate called without an active exception").
    del runner, weights
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
