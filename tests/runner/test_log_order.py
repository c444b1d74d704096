"""The log reads in order: the environment and config banner before what building logs
(paramwise_options, the scaled lr), and nothing is lost when the build fails (issue 21, item 4)."""

from __future__ import annotations

import os

import pytest

from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(4, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, weight_decay=1e-4),
                           paramwise_cfg=dict(bias_decay_mult=0.0)),
        auto_scale_lr=dict(enable=True, base_batch_size=4),
        default_hooks=dict(logger=dict(interval=1000), checkpoint=None),
    )
    cfg.update(overrides)
    return cfg


def _log(runner: Runner) -> str:
    with open(os.path.join(runner.log_dir, f"{runner.timestamp}.log"), encoding="utf-8") as handle:
        return handle.read()


def test_the_banner_comes_before_what_the_build_logs(tmp_path):
    from minirunner.config import Config

    runner = Runner.from_cfg(Config(_cfg(tmp_path)))
    runner.train()
    log = _log(runner)
    banner, config = log.index("System environment:"), log.index("Config:")
    options, scaled = log.index("paramwise_options -- "), log.index("auto_scale_lr: lr scaled")
    assert banner < config < options and config < scaled < log.index("Parameter groups:")


def test_what_a_failing_build_logged_is_kept(tmp_path):
    cfg = _cfg(tmp_path, param_scheduler=dict(type="NoSuchScheduler"))
    runner = Runner(**cfg)
    with pytest.raises(ConfigError, match="NoSuchScheduler"):
        runner.train()
    assert "paramwise_options -- " in _log(runner)  # logged before the failure, not swallowed
