"""FSDPStrategy before any process starts: ``compile`` is handed to the strategy, which compiles
each block before sharding it (the EMA of sharded parameters is tested in test_fsdp_ema.py)."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest
from torch import nn

from minirunner.runner.builders import BuildersMixin
from minirunner.strategy import FSDPStrategy
from minirunner.utils import ConfigError


class _BlockCompilingStrategy:
    sharded_checkpoints = compiles_blocks = True

    def __init__(self) -> None:
        self.asked: list = []

    def compile_blocks(self, options, cache_folder) -> None:
        self.asked.append((options, cache_folder))

    def wrap(self, model):
        return model


def _runner(strategy, **cfg) -> SimpleNamespace:
    return SimpleNamespace(
        strategy=strategy, cfg=cfg, logger=logging.getLogger("test"), _work_dir="/runs/a",
        model=nn.Linear(2, 2), optim_wrapper=None,
    )


def test_compile_goes_to_a_strategy_that_compiles_blocks():
    strategy, model = _BlockCompilingStrategy(), nn.Linear(2, 2)
    wrapped = BuildersMixin.wrap_model(_runner(strategy, compile=dict(backend="eager")), model)
    assert wrapped is model and getattr(model, "_compiled_call_impl", None) is None  # the root stays eager
    assert strategy.asked == [(dict(backend="eager"), os.path.join("/runs/a", "compile_cache"))]
    BuildersMixin.wrap_model(_runner(strategy), model)  # no compile key: nothing asked
    assert len(strategy.asked) == 1
    with pytest.raises(ConfigError, match="compile.mod"):
        BuildersMixin.wrap_model(_runner(strategy, compile=dict(mod="max-autotune")), model)


def test_fsdp_compiles_only_named_blocks():
    with pytest.raises(ConfigError, match="compile: under FSDPStrategy each block named in strategy.shard.blocks"):
        FSDPStrategy().compile_blocks({}, "cache")
    FSDPStrategy(shard=dict(blocks=["Block"])).compile_blocks({}, "cache")
