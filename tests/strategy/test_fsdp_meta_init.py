"""FSDPStrategy(init_device='meta') on gloo processes: the sharded model holds exactly the
parameters and buffers of the usual CPU build (random parameters and buffers, non-persistent
buffers, BatchNorm statistics, shards that are empty on one rank), trains to the same weights
bit for bit, and a model it cannot build that way is refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from runner_support import run_ranks
from strategy.fsdp_support import free_port, train

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("fsdp_environment"),
]

JOB = Path(__file__).with_name("fsdp_meta_job.py")


def build(work_dir: Path, init_device: str, world_size: int = 2, model: str = "ProbeModel") -> dict:
    run_ranks(JOB, [world_size, free_port(), work_dir, init_device, model], world_size=world_size, timeout=240)
    return torch.load(work_dir / "weights.pt", weights_only=True)


def test_the_meta_build_equals_the_cpu_build(tmp_path):
    cpu, meta = build(tmp_path / "cpu", "cpu"), build(tmp_path / "meta", "meta")
    assert cpu.keys() == meta.keys()
    assert {"blocks.2.table", "blocks.0.offset", "blocks.1.norm.running_var", "scale", "cls_token"} <= cpu.keys()
    for key, value in cpu.items():
        assert torch.equal(meta[key], value), key
    # Random values, not what an empty tensor happened to hold.
    assert not torch.equal(cpu["blocks.0.table"], cpu["blocks.1.table"])


def test_training_from_a_meta_build_is_bit_exact(tmp_path):
    cpu = train(tmp_path / "cpu", "fsdp", 2, 4)
    meta = train(tmp_path / "meta", "fsdp-meta", 2, 4)
    for name in ("initial.pt", "final.pt"):
        a = torch.load(tmp_path / "cpu" / name, weights_only=True)
        b = torch.load(tmp_path / "meta" / name, weights_only=True)
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert cpu.keys() == meta.keys()


@pytest.mark.parametrize("model, message", [
    ("InitCfgModel", "strategy.init_device: init_device='meta' keeps only the values the model's constructor gives, "
                     "and the model has init_cfg="),
    ("LateInitModel", "strategy.init_device: init_device='meta' cannot build this model: its constructor runs "
                      "aten.zero_.default on a tensor of a block (shape (5, 6)) after the block was constructed"),
    ("built:ProbeModel", "strategy.init_device: init_device='meta' builds the model from its config, block by "
                         "block, but the model was given already built"),
])
def test_a_model_it_cannot_build_exactly_is_refused(tmp_path, model, message):
    with pytest.raises(AssertionError) as failed:
        build(tmp_path, "meta", world_size=1, model=model)
    assert message in str(failed.value)
