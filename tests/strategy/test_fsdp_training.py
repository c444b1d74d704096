"""FSDP2 on 2 gloo processes trains like DDP and like one process with the same global batch."""

from __future__ import annotations

import os
import re

import pytest
import torch

from strategy.fsdp_support import assert_close, train

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("fsdp_environment"),
]


def test_fsdp_equals_ddp_and_one_process(tmp_path):
    fsdp = train(tmp_path / "fsdp", "fsdp", 2, 4)
    ddp = train(tmp_path / "ddp", "ddp", 2, 4)
    single = train(tmp_path / "single", "single", 1, 8)
    initial = torch.load(tmp_path / "fsdp" / "initial.pt", weights_only=True)
    assert_close(initial, torch.load(tmp_path / "single" / "initial.pt", weights_only=True))
    assert_close(fsdp, ddp)
    assert_close(fsdp, single)
    # The runs trained: the weights moved away from their initial values.
    assert any((fsdp[key] - initial[key]).abs().max() > 1e-3 for key in fsdp)
    # Checkpoints are DCP directories: every rank's shard, the metadata and our state file.
    names = sorted(os.listdir(tmp_path / "fsdp" / "iter_12"))
    assert names == [".metadata", "__0_0.distcp", "__1_0.distcp", "state.pth"]
    assert (tmp_path / "fsdp" / "last_checkpoint").read_text() == "iter_12"


def test_consolidated_checkpoint_loads_weights_only_and_reproduces_the_outputs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from strategy.fsdp_job import TinyTransformer

    final = train(tmp_path / "fsdp", "fsdp", 2, 4)
    out = tmp_path / "model.pth"
    tool = Path(__file__).parents[2] / "tools" / "consolidate_checkpoint.py"
    done = subprocess.run([sys.executable, str(tool), str(tmp_path / "fsdp" / "iter_12"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["meta"]["iter"] == 12 and "optimizer_by_name" not in checkpoint
    consolidated, trained = TinyTransformer(), TinyTransformer()
    consolidated.load_state_dict(checkpoint["state_dict"])
    trained.load_state_dict(final)
    inputs = torch.randn(5, 16)
    assert torch.equal(consolidated(inputs), trained(inputs))
    # The run's earlier checkpoint gives other outputs: the tool read the directory it was given.
    subprocess.run([sys.executable, str(tool), str(tmp_path / "fsdp" / "iter_4"), str(tmp_path / "early.pth")],
                   check=True, capture_output=True, timeout=120)
    consolidated.load_state_dict(torch.load(tmp_path / "early.pth", weights_only=True)["state_dict"])
    assert not torch.allclose(consolidated(inputs), trained(inputs))


def test_load_from_a_file_or_a_directory_on_a_hybrid_mesh(tmp_path):
    import json

    single = train(tmp_path / "single", "single", 1, 8)
    hybrid = dict(type="FSDPStrategy", shard=dict(blocks=["Block"]), mesh=dict(shape=[1, 2]))
    train(tmp_path / "hybrid", "fsdp", 2, 4, "strategy=" + json.dumps(hybrid),
          "load_from=" + json.dumps(str(tmp_path / "single" / "iter_12.pth")))
    # An ordinary checkpoint's whole tensors are scattered into the shards.
    assert_close(torch.load(tmp_path / "hybrid" / "initial.pt", weights_only=True), single)
    hybrid_final = torch.load(tmp_path / "hybrid" / "final.pt", weights_only=True)
    # A checkpoint directory of 2 ranks loads into 1.
    train(tmp_path / "one", "fsdp", 1, 8, "load_from=" + json.dumps(str(tmp_path / "hybrid" / "iter_12")))
    for key, value in torch.load(tmp_path / "one" / "initial.pt", weights_only=True).items():
        assert torch.equal(value, hybrid_final[key]), key


def test_compile_under_fsdp_compiles_each_block_and_trains_the_same(tmp_path):
    import json

    from strategy.fsdp_support import log_text

    eager = train(tmp_path / "eager", "fsdp", 2, 4)
    compiled = train(tmp_path / "compiled", "fsdp", 2, 4, "compile=" + json.dumps(dict(backend="aot_eager")))
    assert_close(compiled, eager)
    log = log_text(tmp_path / "compiled")
    assert "torch.compile: each of 'Block' compiles before it is sharded (backend='aot_eager')" in log
    # Each of the two blocks ran compiled (the root and the head stay eager).
    frames = int(re.search(r"torch\.compile, by iteration \d+: (\d+) frame\(s\) compiled", log).group(1))
    assert frames >= 2
