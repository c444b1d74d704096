"""launcher='pytorch' outside torchrun, and launcher='none' inside it: clear errors, early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from minirunner.runner import Runner
from minirunner.utils import ConfigError

REPO = Path(__file__).resolve().parents[2]
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def no_torchrun(monkeypatch):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _model() -> dict:
    return dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2)


def test_runner_with_pytorch_launcher_needs_torchrun(tmp_path, no_torchrun):
    with pytest.raises(ConfigError) as info:
        Runner(model=_model(), work_dir=str(tmp_path / "work"), launcher="pytorch")
    message = str(info.value)
    assert message.startswith("launcher: 'pytorch' needs the environment torchrun sets")
    assert "RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not set" in message
    assert "torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch" in message
    assert "tools/dist_train.sh CONFIG 2" in message
    # Nothing was written: the error comes before the work dir is made.
    assert not (tmp_path / "work").exists()


def test_runner_names_the_one_missing_variable(tmp_path, no_torchrun, monkeypatch):
    for name, value in dict(RANK="0", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1").items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"^launcher: .* but MASTER_PORT is not set\. Start the job with torchrun"):
        Runner(model=_model(), work_dir=str(tmp_path), launcher="pytorch")


def test_unknown_launcher(tmp_path, no_torchrun):
    with pytest.raises(ConfigError, match=r"^launcher: must be 'none' or 'pytorch' .*got 'pytroch'\. Did you mean 'pytorch'"):
        Runner(model=_model(), work_dir=str(tmp_path), launcher="pytroch")


def test_launcher_none_inside_a_torchrun_job(tmp_path, no_torchrun, monkeypatch):
    # Forgetting --launcher pytorch under torchrun would make every process train alone
    # and write into the same work dir.
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match=r"^launcher: is 'none', but .*WORLD_SIZE=2; pass --launcher pytorch"):
        Runner(model=_model(), work_dir=str(tmp_path), launcher="none")


def test_launcher_none_with_a_torchrun_job_of_one(tmp_path, no_torchrun, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    runner = Runner(model=_model(), work_dir=str(tmp_path), launcher="none")
    assert not runner.distributed


def test_dist_cfg_typo_is_logged_once_through_the_runs_logger(tmp_path, no_torchrun):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw Python warning any more (issue 21, item 7)
        runner = Runner(model=_model(), work_dir=str(tmp_path), env_cfg=dict(dist_cfg=dict(backnd="gloo")))
    log = open(os.path.join(runner.log_dir, f"{runner.timestamp}.log")).read()
    assert log.count("env_cfg.dist_cfg.backnd is not used (only backend and timeout are). Did you mean 'backend'") == 1


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_train_cli_with_pytorch_launcher_outside_torchrun(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARIABLES}
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), str(REPO / "configs" / "digits_mlp.py"),
         "--launcher", "pytorch", "--work-dir", str(tmp_path / "work")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=100,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("config error: launcher: 'pytorch' needs the environment torchrun sets")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "work").exists()
