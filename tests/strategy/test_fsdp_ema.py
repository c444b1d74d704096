"""EMAHook on a model sharded by FSDP2 (2 gloo processes): the averages of each rank's shards
equal a one-process run's, validation uses them and training continues from the raw weights,
sharded checkpoints hold them (resume on the same or another world size, load_from,
consolidation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runner_support import run_ranks
from strategy.fsdp_support import assert_close, free_port, log_text

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.usefixtures("fsdp_environment"),
]

JOB = Path(__file__).with_name("fsdp_ema_job.py")
TOOL = Path(__file__).parents[2] / "tools" / "consolidate_checkpoint.py"


def train(work_dir: Path, mode: str, world_size: int, batch_size: int, *extra: str) -> dict:
    """Run the EMA job; rank 0's final raw weights, full averages (if any) and validation
    metrics, and every rank's output."""
    outputs = run_ranks(JOB, [world_size, free_port(), work_dir, mode, batch_size, *extra],
                        world_size=world_size, timeout=300)
    ema = work_dir / "ema.pt"
    return dict(
        final=torch.load(work_dir / "final.pt", weights_only=True),
        ema=torch.load(ema, weights_only=True) if ema.exists() else None,
        val=json.loads((work_dir / "val.json").read_text()),
        outputs=outputs,
    )


def arg(key: str, value) -> str:
    return f"{key}={json.dumps(value if not isinstance(value, Path) else str(value))}"


def assert_metrics_close(a: list[dict], b: list[dict]) -> None:
    assert [m["iter"] for m in a] == [m["iter"] for m in b] != []
    for x, y in zip(a, b):
        for key in ("logit_mean", "logit_square"):
            assert x[key] == pytest.approx(y[key], abs=1e-5, rel=0), (key, x, y)


@pytest.fixture(scope="module")
def runs(fsdp_environment, tmp_path_factory):
    """FSDP on 2 processes with and without an EMA (the root keeps its gathered parameters
    after a forward pass: reshard_after_forward=False), and one process with an EMA."""
    folder = tmp_path_factory.mktemp("ema")
    keep = arg("reshard_after_forward", False)
    return dict(
        folder=folder,
        fsdp=train(folder / "fsdp", "fsdp", 2, 4, keep, arg("probe_single_file", True)),
        raw=train(folder / "raw", "fsdp", 2, 4, keep, "ema=null"),
        single=train(folder / "single", "single", 1, 8),
    )


def test_sharded_averages_validate_like_one_process_and_training_keeps_raw_weights(runs):
    fsdp, raw, single = runs["fsdp"], runs["raw"], runs["single"]
    # The averages equal the one-process run's, and validation ran with them.
    assert fsdp["ema"]["steps"] == single["ema"]["steps"] == 12
    assert_close(fsdp["ema"], single["ema"])
    assert_metrics_close(fsdp["val"], single["val"])
    # ... not with the raw weights, which validate differently.
    assert abs(fsdp["val"][-1]["logit_square"] - raw["val"][-1]["logit_square"]) > 1e-3
    # Training went on from the raw weights: exactly those of the run without an EMA.
    for key, value in raw["final"].items():
        assert torch.equal(fsdp["final"][key], value), key
    assert_close(fsdp["final"], single["final"])
    # Each rank keeps the averages of its own shards only: about half of them.
    for out in fsdp["outputs"]:
        held, total = map(int, out.split("ema elements held: ")[1].split()[0:3:2])
        assert held < 0.55 * total, out


def test_stochastic_weight_average_from_a_begin_iteration_matches_one_process(tmp_path):
    swa = arg("ema", dict(ema_type="StochasticWeightAverage", interval=2, begin_iter=5))
    fsdp = train(tmp_path / "fsdp", "fsdp", 2, 4, swa)
    single = train(tmp_path / "single", "single", 1, 8, swa)
    assert fsdp["ema"]["steps"] == single["ema"]["steps"] == 8  # iterations 5 to 12
    assert_close(fsdp["ema"], single["ema"])
    assert_metrics_close(fsdp["val"], single["val"])


def test_checkpoint_directory_holds_the_averages_and_consolidates_like_a_file(runs, tmp_path):
    from strategy.fsdp_job import TinyTransformer

    from minirunner.checkpoint.sharded import checkpoint_dir_entries

    folder, fsdp = runs["folder"], runs["fsdp"]
    assert checkpoint_dir_entries(str(folder / "fsdp" / "iter_12")) == {"model", "optimizer", "ema_state_dict"}
    assert "ema_state_dict" not in torch.load(folder / "fsdp" / "iter_12" / "state.pth", weights_only=True)
    out = tmp_path / "model.pth"
    done = subprocess.run([sys.executable, str(TOOL), str(folder / "fsdp" / "iter_12"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    consolidated = torch.load(out, weights_only=True)
    # Laid out as the one-process run's file: state_dict holds the averages, ema_state_dict the
    # training weights.
    file = torch.load(folder / "single" / "iter_12.pth", weights_only=True)
    assert consolidated["state_dict"].keys() == file["state_dict"].keys()
    assert consolidated["ema_state_dict"].keys() == file["ema_state_dict"].keys()
    assert_close(consolidated["state_dict"], file["state_dict"])
    assert_close(consolidated["ema_state_dict"], file["ema_state_dict"])
    averaged, trained = TinyTransformer(), TinyTransformer()
    averaged.load_state_dict(consolidated["state_dict"])
    trained.load_state_dict({k[len("module."):]: v for k, v in consolidated["ema_state_dict"].items() if k != "steps"})
    reference = TinyTransformer()
    reference.load_state_dict({k[len("module."):]: v for k, v in fsdp["ema"].items() if k != "steps"})
    inputs = torch.randn(5, 16)
    torch.testing.assert_close(averaged(inputs), reference(inputs), rtol=0, atol=1e-6)
    reference.load_state_dict(fsdp["final"])
    torch.testing.assert_close(trained(inputs), reference(inputs), rtol=0, atol=1e-6)
    assert not torch.allclose(averaged(inputs), trained(inputs), atol=1e-3)


def test_a_single_file_of_a_sharded_model_gets_whole_averages(runs):
    folder, fsdp = runs["folder"], runs["fsdp"]
    # A checkpoint of whole tensors (state_dict='full') gets the averages gathered from the shards.
    single_file = torch.load(folder / "fsdp" / "single_file.pt", weights_only=True)
    for key, value in single_file["ema_state_dict"].items():
        assert type(value) is torch.Tensor, key
        expected = fsdp["ema"]["steps"] if key == "steps" else fsdp["final"][key[len("module."):]]
        assert torch.equal(value, expected), key
    for key, value in single_file["state_dict"].items():
        assert torch.equal(value, fsdp["ema"][f"module.{key}"]), key


def test_resume_on_the_same_world_size_is_bit_exact(runs, tmp_path):
    folder, fsdp = runs["folder"], runs["fsdp"]
    resumed = train(tmp_path, "fsdp", 2, 4, arg("reshard_after_forward", False), arg("resume", folder / "fsdp" / "iter_4"))
    assert f"resumed from {folder / 'fsdp' / 'iter_4'} at epoch 0, iter 4" in log_text(tmp_path)
    for name in ("final", "ema"):
        for key, value in fsdp[name].items():
            assert torch.equal(resumed[name][key], value), (name, key)
    assert resumed["val"] == fsdp["val"][1:]


def test_resume_two_to_one_process(runs, tmp_path):
    folder, fsdp = runs["folder"], runs["fsdp"]
    resumed = train(tmp_path, "fsdp", 1, 8, arg("resume", folder / "fsdp" / "iter_8"))
    assert "world size 1 (the checkpoint's run had 2)" in log_text(tmp_path)
    assert_close(resumed["ema"], fsdp["ema"])
    assert_close(resumed["final"], fsdp["final"])
    assert_metrics_close(resumed["val"], fsdp["val"][2:])


def test_resume_one_to_two_processes_with_momentum_annealing_and_async_saves(tmp_path):
    ema = arg("ema", dict(ema_type="MomentumAnnealingEMA", momentum=0.05, gamma=4))
    one = train(tmp_path / "one", "fsdp", 1, 8, ema, arg("checkpoint", dict(async_save=True)))
    resumed = train(tmp_path / "two", "fsdp", 2, 4, ema, arg("resume", tmp_path / "one" / "iter_4"))
    assert "world size 2 (the checkpoint's run had 1)" in log_text(tmp_path / "two")
    assert_close(resumed["ema"], one["ema"])
    assert_close(resumed["final"], one["final"])
    assert_metrics_close(resumed["val"], one["val"][1:])


def test_load_from_takes_the_averaged_weights_as_from_a_file(runs, tmp_path):
    folder, fsdp = runs["folder"], runs["fsdp"]
    short = arg("train_cfg", dict(by_epoch=False, max_iters=4, val_interval=4))
    # As from a file, load_from gives the model the checkpoint's state_dict, the averages, and
    # the average starts from them.
    averages = {key[len("module."):]: value for key, value in fsdp["ema"].items() if key != "steps"}
    file = torch.load(folder / "single" / "iter_12.pth", weights_only=True)["state_dict"]
    for name, source in (("dir", folder / "fsdp" / "iter_12"), ("file", folder / "single" / "iter_12.pth")):
        run = train(tmp_path / name, "fsdp", 2, 4, arg("load_from", source), short)
        assert "load_from: loaded the weights of" in log_text(tmp_path / name)
        expected = averages if name == "dir" else file
        initial = torch.load(tmp_path / name / "initial.pt", weights_only=True)
        ema_initial = torch.load(tmp_path / name / "ema_initial.pt", weights_only=True)
        assert ema_initial.pop("steps") == 0 and run["ema"]["steps"] == 4
        for key, value in expected.items():
            assert torch.equal(initial[key], value), (name, key)
            assert torch.equal(ema_initial[f"module.{key}"], value), (name, key)


def test_an_averaging_device_other_than_the_shards_is_refused(tmp_path):
    with pytest.raises(AssertionError) as failed:
        train(tmp_path, "fsdp", 1, 8, arg("ema", dict(momentum=0.2, device="meta")))
    assert "device: the model is sharded by FSDPStrategy: its averages are kept beside each rank's shards" in str(
        failed.value)
