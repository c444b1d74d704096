"""FSDPStrategy(state_dict='full') on 2 gloo processes: a checkpoint is one ordinary file, as a
one-process run writes it (the whole model and optimizer gathered on rank 0), equal to what the
sharded checkpoint of the same run consolidates to; resuming it is bit-exact on the same world
size and within 1e-5 on another or without FSDP; a run in either mode resumes from the other's
checkpoint; load_from reads it; an EMAHook's averages go through it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner_support import run_ranks
from strategy.fsdp_support import assert_close, free_port, log_text, train

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.usefixtures("fsdp_environment"),
]

TOOL = Path(__file__).parents[2] / "tools" / "consolidate_checkpoint.py"
EMA_JOB = Path(__file__).with_name("fsdp_ema_job.py")


def arg(key: str, value) -> str:
    return f"{key}={json.dumps(value if not isinstance(value, Path) else str(value))}"


@pytest.fixture(scope="module")
def runs(fsdp_environment, tmp_path_factory):
    """The same 2-process FSDP run (batch 4 each, checkpoints every 4 iterations) writing full
    files and writing sharded directories."""
    folder = tmp_path_factory.mktemp("full")
    return dict(
        full=(folder / "full", train(folder / "full", "fsdp-full", 2, 4)),
        sharded=(folder / "sharded", train(folder / "sharded", "fsdp", 2, 4)),
    )


def test_a_checkpoint_is_one_file_equal_to_the_consolidated_directory(runs, tmp_path):
    folder, final = runs["full"]
    for n in (4, 8, 12):
        assert (folder / f"iter_{n}.pth").is_file() and not (folder / f"iter_{n}").exists()
    assert (folder / "last_checkpoint").read_text().strip() == "iter_12.pth"
    file = torch.load(folder / "iter_12.pth", weights_only=True)
    assert file.keys() >= {"meta", "state_dict", "optimizer", "param_schedulers", "rng", "sampler"}
    assert file["state_dict"].keys() == final.keys()
    for key, value in final.items():
        assert type(file["state_dict"][key]) is torch.Tensor and torch.equal(file["state_dict"][key], value), key

    out = tmp_path / "consolidated.pth"
    done = subprocess.run([sys.executable, str(TOOL), str(runs["sharded"][0] / "iter_12"), str(out), "--with-optimizer"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    consolidated = torch.load(out, weights_only=True)
    assert consolidated["state_dict"].keys() == file["state_dict"].keys()
    for key, value in consolidated["state_dict"].items():
        assert torch.equal(file["state_dict"][key], value), key
    # The optimizer's state is keyed by parameter name, as DCP keeps it, with whole tensors.
    by_name = consolidated["optimizer_by_name"]["state"]
    assert file["optimizer"]["state"].keys() == by_name.keys() == final.keys()
    for name, state in by_name.items():
        for key, value in state.items():
            assert torch.equal(file["optimizer"]["state"][name][key], value), (name, key)
    assert file["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_resume_on_the_same_world_size_is_bit_exact(runs, tmp_path):
    folder, final = runs["full"]
    resumed = train(tmp_path, "fsdp-full", 2, 4, arg("resume", folder / "iter_4.pth"))
    log = log_text(tmp_path)
    assert f"resumed from {folder / 'iter_4.pth'} at epoch 0, iter 4" in log
    assert "WARNING - resume:" not in log  # e.g. no setting read back differently
    for key in final:
        assert torch.equal(resumed[key], final[key]), key


def test_a_run_resumes_from_the_other_modes_checkpoint_bit_exactly(runs, tmp_path):
    # 'full' reads a DCP directory, 'sharded' reads a full file: the load paths do not depend
    # on the mode the run writes in.
    full_folder, final = runs["full"]
    sharded_folder, _ = runs["sharded"]
    from_directory = train(tmp_path / "full", "fsdp-full", 2, 4, arg("resume", sharded_folder / "iter_4"))
    from_file = train(tmp_path / "sharded", "fsdp", 2, 4, arg("resume", full_folder / "iter_4.pth"))
    assert f"resumed from {sharded_folder / 'iter_4'} at epoch 0, iter 4" in log_text(tmp_path / "full")
    assert f"resumed from {full_folder / 'iter_4.pth'} at epoch 0, iter 4" in log_text(tmp_path / "sharded")
    assert (tmp_path / "full" / "iter_12.pth").is_file() and (tmp_path / "sharded" / "iter_12").is_dir()
    for key in final:
        assert torch.equal(from_directory[key], final[key]), key
        assert torch.equal(from_file[key], final[key]), key


def test_resume_two_to_one_process(runs, tmp_path):
    folder, final = runs["full"]
    resumed = train(tmp_path, "fsdp-full", 1, 8, arg("resume", folder / "iter_8.pth"))
    assert "world size 1 (the checkpoint's run had 2)" in log_text(tmp_path)
    assert_close(resumed, final)


def test_resume_one_to_two_processes(tmp_path):
    one = train(tmp_path / "one", "fsdp-full", 1, 8)
    resumed = train(tmp_path / "two", "fsdp-full", 2, 4, arg("resume", tmp_path / "one" / "iter_4.pth"))
    assert "world size 2 (the checkpoint's run had 1)" in log_text(tmp_path / "two")
    assert_close(resumed, one)


def test_files_resume_across_strategies(runs, tmp_path):
    # A one-process run's file (optimizer keyed by index) resumes under FSDP, and a full file
    # of an FSDP run (keyed by name) in one plain process.
    single = train(tmp_path / "single", "single", 1, 8)
    resumed = train(tmp_path / "fsdp", "fsdp-full", 2, 4, arg("resume", tmp_path / "single" / "iter_4.pth"))
    assert "resumed from" in log_text(tmp_path / "fsdp")
    assert_close(resumed, single)
    folder, final = runs["full"]
    resumed = train(tmp_path / "plain", "single", 1, 8, arg("resume", folder / "iter_8.pth"))
    assert "WARNING - resume: optimizer" not in log_text(tmp_path / "plain")
    assert_close(resumed, final)


def test_load_from_a_full_file_sharded_and_in_one_plain_process(runs, tmp_path):
    folder, final = runs["full"]
    short = arg("train_cfg", dict(by_epoch=False, max_iters=2))
    for mode, world_size, batch_size in (("fsdp-full", 2, 4), ("single", 1, 8)):
        train(tmp_path / mode, mode, world_size, batch_size, arg("load_from", folder / "iter_12.pth"), short)
        assert "every key matched" in log_text(tmp_path / mode)
        initial = torch.load(tmp_path / mode / "initial.pt", weights_only=True)
        for key, value in final.items():
            assert torch.equal(initial[key], value), (mode, key)


def test_several_optimizers_are_refused_before_training(tmp_path):
    wrappers = {name: dict(optimizer=dict(type="SGD", lr=0.1)) for name in ("embed", "blocks", "head")}
    with pytest.raises(AssertionError) as failed:
        train(tmp_path, "fsdp-full", 2, 4, arg("optim_wrapper", wrappers))
    assert "optim_wrapper: FSDPStrategy checkpoints hold one optimizer, got OptimWrapperDict" in str(failed.value)
    assert "Iter(train)" not in str(failed.value)


def ema_train(work_dir: Path, world_size: int, batch_size: int, *extra: str) -> dict:
    run_ranks(EMA_JOB, [world_size, free_port(), work_dir, "fsdp-full", batch_size, *extra],
              world_size=world_size, timeout=300)
    return dict(
        final=torch.load(work_dir / "final.pt", weights_only=True),
        ema=torch.load(work_dir / "ema.pt", weights_only=True),
        val=json.loads((work_dir / "val.json").read_text()),
    )


def test_ema_averages_go_through_a_full_file_and_resume_bit_exact(tmp_path):
    whole = ema_train(tmp_path / "whole", 2, 4)
    # As in a one-process run's file: state_dict holds the averages, ema_state_dict the
    # training weights, all whole tensors.
    file = torch.load(tmp_path / "whole" / "iter_12.pth", weights_only=True)
    assert file["ema_state_dict"]["steps"] == whole["ema"]["steps"] == 12
    for key, value in whole["final"].items():
        assert type(file["ema_state_dict"][f"module.{key}"]) is torch.Tensor
        assert torch.equal(file["ema_state_dict"][f"module.{key}"], value), key
        assert torch.equal(file["state_dict"][key], whole["ema"][f"module.{key}"]), key
    assert not torch.equal(file["state_dict"]["head.weight"], whole["final"]["head.weight"])

    resumed = ema_train(tmp_path / "resumed", 2, 4, arg("resume", tmp_path / "whole" / "iter_4.pth"))
    for name in ("final", "ema"):
        for key, value in whole[name].items():
            assert torch.equal(resumed[name][key], value), (name, key)
    assert resumed["val"] == whole["val"][1:]
