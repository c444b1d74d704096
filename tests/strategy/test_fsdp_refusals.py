"""What FSDPStrategy does not support yet is refused with one line before training, instead
of running wrongly: an EMA of sharded parameters, and compiling a sharded model."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from torch import nn

from minirunner.hooks import EMAHook
from minirunner.runner.builders import BuildersMixin
from minirunner.utils import ConfigError


def _runner(sharded: bool, **cfg) -> SimpleNamespace:
    return SimpleNamespace(
        strategy=SimpleNamespace(sharded_checkpoints=sharded, wrap=lambda model: model),
        cfg=cfg, logger=logging.getLogger("test"), _work_dir="unused",
        model=nn.Linear(2, 2), optim_wrapper=None,
    )


def test_ema_of_a_sharded_model_is_refused():
    with pytest.raises(ConfigError, match="EMAHook: an average of a model sharded by FSDPStrategy"):
        EMAHook().before_run(_runner(sharded=True))
    hook = EMAHook()
    hook.before_run(_runner(sharded=False))  # unsharded: the average is built
    assert hook.ema_model is not None


def test_compiling_a_sharded_model_is_refused():
    with pytest.raises(ConfigError, match="compile: compiling a model sharded by FSDPStrategy"):
        BuildersMixin.wrap_model(_runner(sharded=True, compile=True), nn.Linear(2, 2))
    model = nn.Linear(2, 2)
    assert BuildersMixin.wrap_model(_runner(sharded=True), model) is model  # no compile: fine
