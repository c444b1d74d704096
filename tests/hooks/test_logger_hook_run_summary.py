"""The start of a training log says the precision, the global batch size and whether validation
uses EMA weights (issue 21, item 5)."""

from __future__ import annotations

import os

import pytest

from minirunner.runner import Runner
from runner_support import loader_cfg


def _log(tmp_path, **overrides) -> str:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(8, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(logger=dict(interval=1000), checkpoint=None),
    )
    cfg.update(overrides)
    runner = Runner(**cfg)
    runner.train()
    with open(os.path.join(runner.log_dir, f"{runner.timestamp}.log"), encoding="utf-8") as handle:
        return handle.read()


def test_a_plain_run_says_float32_and_its_global_batch(tmp_path):
    log = _log(tmp_path)
    assert "precision: float32 (no AMP)" in log
    assert "global batch size: 2 = 1 process(es) x batch_size 2 x accumulative_counts 1" in log
    assert "EMA weights" not in log


@pytest.mark.parametrize("dtype, scaler", [("bfloat16", "no loss scaler"), ("float16", "a dynamic loss scaler")])
def test_amp_says_its_dtype_and_scaler(tmp_path, dtype, scaler):
    wrapper = dict(type="AmpOptimWrapper", dtype=dtype, optimizer=dict(type="SGD", lr=0.1), accumulative_counts=2)
    try:
        log = _log(tmp_path, optim_wrapper=wrapper)
    except Exception as error:  # float16 autocast on a CPU without support
        pytest.skip(f"{dtype} AMP does not run here: {error}")
    assert f"precision: AMP with {dtype} autocast, {scaler}" in log
    assert "global batch size: 4 = 1 process(es) x batch_size 2 x accumulative_counts 2" in log


def test_ema_is_stated(tmp_path):
    log = _log(tmp_path, custom_hooks=[dict(type="EMAHook")])
    assert "validation and test use the EMA weights (EMAHook)" in log
