"""FSDP2 on 2 gloo processes trains like DDP and like one process with the same global batch."""

from __future__ import annotations

import os

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
