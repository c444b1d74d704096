"""One rank of the init_device tests: ``python fsdp_meta_job.py RANK WORLD_SIZE PORT WORK_DIR
INIT_DEVICE [MODEL]``.

Builds a Runner (no training) whose model is sharded by FSDPStrategy with ``init_device``
('cpu' or 'meta'); rank 0 writes every parameter and buffer, whole (non-persistent buffers
included), to ``WORK_DIR/weights.pt``. Each rank prints its peak RSS after the build. MODEL:
``ProbeModel`` (default; random parameters, odd shapes, random persistent and non-persistent
buffers, BatchNorm statistics), ``InitCfgModel`` (has an init_cfg), ``LateInitModel`` (its
constructor re-initialises a block after constructing it); ``built:NAME`` passes NAME as a module.
"""

from __future__ import annotations

import gc
import os
import resource
import sys

import torch
from torch import nn

torch.set_num_threads(1)

from minirunner.model import BaseModel  # noqa: E402
from minirunner.registry import MODELS  # noqa: E402
from minirunner.runner import Runner  # noqa: E402


class ProbeBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 5)  # 5 rows: chunks of 3 and 2 over two ranks
        self.norm = nn.BatchNorm1d(5)
        self.out = nn.Linear(5, dim)
        self.gain = nn.Parameter(torch.randn(1, dim))  # one row: rank 1's shard is empty
        self.register_buffer("table", torch.randn(7), persistent=False)
        self.register_buffer("offset", torch.rand(3))

    def forward(self, x):
        return x + self.out(self.norm(self.fc(x))) * self.gain + self.offset.sum() + self.table.mean()


@MODELS.register_module(force=True)
class ProbeModel(BaseModel):
    def __init__(self, dim: int = 6, depth: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cls_token = nn.Parameter(torch.randn(1, dim))
        self.embed = nn.Linear(4, dim)
        self.blocks = nn.ModuleList([ProbeBlock(dim) for _ in range(depth)])  # all built, then registered
        self.head = nn.Linear(dim, 3)
        self.register_buffer("scale", torch.rand(dim))

    def forward(self, inputs, data_samples=None, mode="tensor"):
        x = self.embed(inputs) + self.cls_token
        for block in self.blocks:
            x = block(x)
        return self.head(x * self.scale)


@MODELS.register_module(force=True)
class InitCfgModel(ProbeModel):
    def __init__(self) -> None:
        super().__init__(init_cfg=dict(type="Normal", layer="Linear", std=0.01))


@MODELS.register_module(force=True)
class LateInitModel(ProbeModel):
    def __init__(self) -> None:
        super().__init__()
        nn.init.zeros_(self.blocks[0].fc.weight)  # after the block was constructed


def whole_tensors(model: nn.Module) -> dict:
    from torch.distributed.tensor import DTensor

    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return {
        name: (value.full_tensor() if isinstance(value, DTensor) else value).detach().clone()
        for name, value in tensors.items()
    }


def main() -> None:
    rank, world_size, port, work_dir, init_device = sys.argv[1:6]
    model = sys.argv[6] if len(sys.argv) > 6 else "ProbeModel"
    os.environ.update(RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    # "built:NAME": the model given to the Runner as a module, not a config.
    model_cfg = MODELS.build(dict(type=model[6:])) if model.startswith("built:") else dict(type=model)
    runner = Runner.from_cfg(dict(
        model=model_cfg,
        work_dir=work_dir,
        randomness=dict(seed=3),
        launcher="pytorch",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        strategy=dict(type="FSDPStrategy", shard=dict(blocks=["ProbeBlock"]), init_device=init_device),
    ))
    print(f"peak rss kib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
    weights = whole_tensors(runner.strategy.unwrap(runner.model))
    with torch.no_grad():  # the sharded model runs
        runner.model(torch.ones(2, 4))
    if int(rank) == 0:
        torch.save(weights, os.path.join(work_dir, "weights.pt"))
    del runner
    gc.collect()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
