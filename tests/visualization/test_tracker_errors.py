"""Tracker backends refuse a missing package or a bad argument before training, with the
key path and the fix. The missing-package cases run in any environment."""

from __future__ import annotations

import sys

import pytest

from minirunner.config import Config
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from minirunner.visualization import Visualizer
from tracker_support import run_cfg


@pytest.mark.parametrize("backend, module", [("MLflowVisBackend", "mlflow"), ("WandbVisBackend", "wandb")])
def test_a_missing_package_names_the_extra(tmp_path, monkeypatch, backend, module):
    monkeypatch.setitem(sys.modules, module, None)  # the import fails, installed or not
    with pytest.raises(ConfigError) as info:
        Runner.from_cfg(Config(run_cfg(tmp_path, [dict(type=backend)])))
    message = str(info.value)
    assert message.startswith("visualizer.vis_backends.1:")
    assert f"pip install -e '.[{module}]'" in message
    assert f"remove {backend} from visualizer.vis_backends" in message


def test_ranks_other_than_0_build_no_tracker(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not even imported
    visualizer = Visualizer(vis_backends=[dict(type="MLflowVisBackend")], save_dir=None)
    assert visualizer.backends == []
    visualizer.add_scalars({"loss": 1.0}, step=1, global_iter=1)


@pytest.mark.trackers
@pytest.mark.parametrize(
    "backend, key, words",
    [
        (dict(type="MLflowVisBackend", tracking_uri="nosuch://x"), "tracking_uri", "no tracking store for the scheme 'nosuch'"),
        (dict(type="MLflowVisBackend", tracking_uri="/tmp/mlruns"), "tracking_uri", "MLFLOW_ALLOW_FILE_STORE=true"),
        (dict(type="MLflowVisBackend", tags=["a"]), "tags", "must be a dict"),
        (dict(type="MLflowVisBackend", tracked_config_keys="model"), "tracked_config_keys", "list of top-level"),
        (dict(type="MLflowVisBackend", exp_nme="x"), "", "exp_name"),
        (dict(type="WandbVisBackend", init_kwargs="project"), "init_kwargs", "must be a dict"),
        (dict(type="WandbVisBackend", define_metric_cfg=["x"]), "define_metric_cfg", "list of dicts"),
        (dict(type="WandbVisBackend", commit="yes"), "commit", "True, False or None"),
    ],
)
def test_bad_arguments_are_config_errors_before_training(tmp_path, monkeypatch, backend, key, words):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError) as info:
        Runner.from_cfg(Config(run_cfg(tmp_path / "run", [backend])))
    assert str(info.value).startswith("visualizer.vis_backends.1" + (f".{key}:" if key else ""))
    assert words in str(info.value)


@pytest.mark.trackers
def test_unknown_tracked_config_keys_stop_the_run_before_training(tmp_path):
    backend = dict(type="MLflowVisBackend", tracked_config_keys=["optim_wrapper", "optimizer"])
    runner = Runner.from_cfg(Config(run_cfg(tmp_path / "run", [backend])))
    with pytest.raises(ConfigError) as info:
        runner.train()
    assert str(info.value).startswith("visualizer.vis_backends.1.tracked_config_keys: 'optimizer' not in the config")
    assert not (tmp_path / "run" / "epoch_1.pth").exists()
