"""WandbVisBackend in offline mode (no network): what a run logs, read back from W&B's own
offline files; resume continuing the same run id; every W&B folder inside the log dir."""

from __future__ import annotations

import glob
import os

import pytest
import torch

from minirunner.config import Config
from minirunner.runner import Runner
from tracker_support import run_cfg, scalars_json, wandb_config, wandb_history, wandb_records

pytestmark = [pytest.mark.trackers, pytest.mark.slow]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Offline W&B, with HOME and the current folder empty so a stray write would show."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("home", "cwd"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def _train(cfg: dict) -> Runner:
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return runner


def _run_folder(runner: Runner, run_id: str) -> str:
    (folder,) = glob.glob(os.path.join(runner.log_dir, "wandb", f"offline-run-*-{run_id}"))
    return folder


def test_offline_run_and_resume(offline):
    backend = dict(type="WandbVisBackend", init_kwargs=dict(project="tests"),
                   define_metric_cfg={"accuracy/top1": "max"})
    work = offline / "run"
    runner = Runner.from_cfg(Config(run_cfg(work, [backend])))
    runner.visualizer.add_image("sample", torch.full((4, 4, 3), 255, dtype=torch.uint8), step=2)
    runner.train()
    run_id = runner.visualizer.get_backend("WandbVisBackend").run_id
    folder = _run_folder(runner, run_id)
    # History: every scalar at the global iteration; validation joins the step it was computed at.
    history = {row["_step"]: row for row in wandb_history(folder)}
    records = scalars_json(runner.log_dir)
    for record in records:
        for key, value in record.items():
            if key not in ("step", "iter"):
                assert history[record["iter"]][key] == pytest.approx(value)
    assert sorted(history) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert history[2]["sample/path"].endswith(".png") and history[2]["sample/width"] == 4
    assert [step for step, row in sorted(history.items()) if "accuracy/top1" in row] == [8, 16]
    config = wandb_config(folder)
    assert config["optim_wrapper"] == {"optimizer": {"type": "SGD", "lr": 0.1}}
    assert config["train_cfg"]["max_epochs"] == 2
    metrics = [r.metric for r in wandb_records(folder) if r.WhichOneof("record_type") == "metric"]
    assert any(m.name == "accuracy/top1" and m.summary.max for m in metrics)

    # --resume in the same work dir: the same run id, its steps going on.
    resumed = _train(run_cfg(work, [backend], max_epochs=3, resume=True))
    assert resumed.visualizer.get_backend("WandbVisBackend").run_id == run_id
    more = wandb_history(_run_folder(resumed, run_id))
    assert [row["_step"] for row in more] == [18, 20, 22, 24]

    # A branch (another work dir) is a new run that names its parent.
    branch = _train(run_cfg(offline / "branch", [backend], max_epochs=3, resume=str(work / "epoch_2.pth")))
    branch_id = branch.visualizer.get_backend("WandbVisBackend").run_id
    assert branch_id != run_id
    assert wandb_config(_run_folder(branch, branch_id))["minirunner_parent_run_id"] == run_id

    # W&B wrote only inside the log folders.
    assert os.listdir(offline / "home") == [] and os.listdir(offline / "cwd") == []
    assert {os.path.basename(p) for p in glob.glob(os.path.join(runner.log_dir, "wandb", "*"))} >= {"cache"}
