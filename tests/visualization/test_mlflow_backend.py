"""MLflowVisBackend against a real tracking server on 127.0.0.1 (and stores without one):
what a run logs, resume continuing the run, a branch making a new one, and a server that
goes away mid-run."""

from __future__ import annotations

import os
import time

import pytest
import torch

from minirunner.config import Config
from minirunner.hooks import Hook
from minirunner.runner import Runner
from tracker_support import Gate, run_cfg, scalars_json

pytestmark = [pytest.mark.trackers, pytest.mark.slow]


def _train(cfg: dict) -> Runner:
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    return runner


def _mlflow(uri: str | None = None, **kwargs) -> dict:
    backend = dict(type="MLflowVisBackend", exp_name="tests", **kwargs)
    if uri is not None:
        backend["tracking_uri"] = uri
    return backend


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_server_run_then_resume_then_branch(tmp_path, mlflow_server):
    import mlflow

    client = mlflow.MlflowClient(mlflow_server.uri)
    work = tmp_path / "run"
    backend = _mlflow(mlflow_server.uri, tags=dict(team="vision"), params=dict(note="first try"))
    runner = _train(run_cfg(work, [backend]))
    run_id = runner.visualizer.get_backend("MLflowVisBackend").run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["team"] == "vision"
    params = run.data.params
    assert params["optim_wrapper.optimizer.lr"] == "0.1"
    assert params["train_cfg.max_epochs"] == "2"
    assert params["note"] == "first try"
    # Every scalar of scalars.json, at the global iteration; validation too (8 iterations an epoch).
    records = scalars_json(runner.log_dir)
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "accuracy/top1" in r]
    loss = _history(client, run_id, "loss")
    assert [step for step, _ in loss] == [r["iter"] for r in train] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [value for _, value in loss] == pytest.approx([r["loss"] for r in train])
    accuracy = _history(client, run_id, "accuracy/top1")
    assert [step for step, _ in accuracy] == [8, 16]
    assert [value for _, value in accuracy] == pytest.approx([r["accuracy/top1"] for r in val])
    assert [r["step"] for r in val] == [1, 2]  # scalars.json keeps the epoch as its step
    # The config as an artifact, and the log folder's files under its name.
    config_file = client.download_artifacts(run_id, "config.py", str(tmp_path / "download"))
    with open(config_file, encoding="utf-8") as handle:
        assert handle.read() == runner.cfg.pretty_text
    log_folder = os.path.basename(runner.log_dir)
    uploaded = {a.path for a in client.list_artifacts(run_id, log_folder)}
    assert f"{log_folder}/{log_folder}.log" in uploaded
    assert {a.path for a in client.list_artifacts(run_id, f"{log_folder}/vis_data")} >= {f"{log_folder}/vis_data/scalars.json"}

    # --resume in the same work dir: the same run goes on (a third epoch).
    resumed = _train(run_cfg(work, [backend], max_epochs=3, resume=True))
    assert resumed.visualizer.get_backend("MLflowVisBackend").run_id == run_id
    assert [s for s, _ in _history(client, run_id, "loss")] == list(range(2, 25, 2))
    assert [s for s, _ in _history(client, run_id, "accuracy/top1")] == [8, 16, 24]
    assert client.get_run(run_id).data.params["train_cfg.max_epochs"] == "2"  # params never change

    # A branch: epoch 2's checkpoint resumed into another work dir starts a new run, tagged.
    branch = _train(run_cfg(tmp_path / "branch", [backend], max_epochs=3, resume=str(work / "epoch_2.pth")))
    branch_id = branch.visualizer.get_backend("MLflowVisBackend").run_id
    assert branch_id != run_id
    assert client.get_run(branch_id).data.tags["minirunner.parent_run_id"] == run_id
    assert [s for s, _ in _history(client, branch_id, "loss")] == [18, 20, 22, 24]
    assert len(_history(client, run_id, "loss")) == 12  # the parent run is left as it was


class _AtIterations(Hook):
    """Calls ``actions[n](runner)`` after training iteration ``n`` (1-based), before the logger."""

    def __init__(self, **actions) -> None:
        self.actions = {int(name[1:]): action for name, action in actions.items()}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        action = self.actions.get(runner.iter + 1)
        if action is not None:
            action(runner)


def _calls(runner: Runner):
    """The MLflow backend's queue of calls (its ``wait`` returns once the queue is worked off)."""
    return runner.visualizer.get_backend("MLflowVisBackend")._calls


def _log_text(runner: Runner) -> str:
    with open(os.path.join(runner.log_dir, os.path.basename(runner.log_dir) + ".log"), encoding="utf-8") as handle:
        return handle.read()


def test_calls_missed_while_the_server_is_away_are_sent_when_it_is_back(tmp_path, mlflow_server):
    import mlflow

    gate = Gate(mlflow_server.port)
    times = {}

    def shut(runner):
        assert _calls(runner).wait(60)  # the run is open and everything so far has arrived
        gate.shut()
        times["shut"] = time.monotonic()

    def open_again(runner):
        times["opened"] = time.monotonic()
        _calls(runner).wait(60)  # the lines at 4 and 6 have been tried, and failed
        gate.open()

    hook = _AtIterations(i3=shut, i7=open_again)
    runner = Runner(**run_cfg(tmp_path / "run", [_mlflow(gate.uri)], custom_hooks=[hook]))
    runner.train()
    gate.shut()
    # Iterations 4-7 logged two lines to an unreachable server: they cost training nothing.
    assert times["opened"] - times["shut"] < 5
    log = _log_text(runner)
    assert "MLflowVisBackend: a call failed" in log
    assert "MLflowVisBackend: reachable again" in log
    client = mlflow.MlflowClient(mlflow_server.uri)
    run_id = runner.visualizer.get_backend("MLflowVisBackend").run_id
    assert [s for s, _ in _history(client, run_id, "loss")] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [s for s, _ in _history(client, run_id, "accuracy/top1")] == [8, 16]


def test_a_server_stopped_mid_run_lets_training_finish_within_seconds(tmp_path, own_mlflow_server):
    import mlflow

    times = {}

    def stop(runner):
        # Everything logged so far has arrived; the server then goes away for good.
        assert _calls(runner).wait(60)
        own_mlflow_server.stop()
        times["stopped"] = time.monotonic()

    runner = Runner(**run_cfg(tmp_path / "run", [_mlflow(own_mlflow_server.uri)], custom_hooks=[_AtIterations(i5=stop)]))
    runner.train()
    assert time.monotonic() - times["stopped"] < 15  # 11 iterations, 6 lines, the end of the run
    log = _log_text(runner)
    assert "MLflowVisBackend: a call failed" in log
    assert "could not be delivered when the run ended" in log
    records = scalars_json(runner.log_dir)  # complete, whatever the server did
    assert [r["iter"] for r in records if "loss" in r] == [2, 4, 6, 8, 10, 12, 14, 16]
    assert [r["iter"] for r in records if "accuracy/top1" in r] == [8, 16]
    # What the server stored before it stopped, read from its SQLite store.
    client = mlflow.MlflowClient(f"sqlite:///{own_mlflow_server.folder}/mlflow.db")
    run_id = runner.visualizer.get_backend("MLflowVisBackend").run_id
    assert [s for s, _ in _history(client, run_id, "loss")] == [2, 4]


def test_default_store_lives_in_the_work_dir(tmp_path, monkeypatch):
    import mlflow

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    work = tmp_path / "run"
    runner = _train(run_cfg(work, [_mlflow()], max_epochs=1))
    assert os.listdir(cwd) == []  # no ./mlruns, no ./mlflow.db
    client = mlflow.MlflowClient(f"sqlite:///{work}/mlflow.db")
    run_id = runner.visualizer.get_backend("MLflowVisBackend").run_id
    assert [s for s, _ in _history(client, run_id, "loss")] == [2, 4, 6, 8]
    artifacts = client.get_run(run_id).info.artifact_uri
    assert artifacts.startswith((work / "mlartifacts").as_uri())
    assert os.path.isfile(os.path.join(work, "mlartifacts", artifacts.split("/mlartifacts/")[1], "config.py"))
    # After the run: a file and an image go to the same run (the backend opens it again).
    runner.visualizer.add_artifact(str(work / "epoch_1.pth"))
    runner.visualizer.add_image("sample", torch.zeros(4, 4, 3, dtype=torch.uint8), step=8)
    runner.visualizer.close()
    uploaded = {a.path for a in client.list_artifacts(run_id)}
    assert "epoch_1.pth" in uploaded and "images" in uploaded
    assert client.get_run(run_id).info.status == "FINISHED"
    assert os.listdir(cwd) == []


def test_file_store_without_a_server_and_tracked_config_keys(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "store").as_uri()
    backend = _mlflow(uri, tracked_config_keys=["optim_wrapper", "train_cfg"], run_name="small")
    runner = _train(run_cfg(tmp_path / "run", [backend], max_epochs=1))
    client = mlflow.MlflowClient(uri)
    run = client.get_run(runner.visualizer.get_backend("MLflowVisBackend").run_id)
    assert run.info.run_name == "small"
    assert set(run.data.params) == {"optim_wrapper.optimizer.type", "optim_wrapper.optimizer.lr",
                                    "train_cfg.by_epoch", "train_cfg.max_epochs", "train_cfg.val_interval"}
    assert [s for s, _ in _history(client, run.info.run_id, "accuracy/top1")] == [8]
