"""One step axis: TensorBoard plots training and validation at the global iteration, which
scalars.json records as ``iter`` beside its own ``step``."""

from __future__ import annotations

import os

import pytest
import torch

from minirunner.config import Config
from minirunner.runner import Runner
from tracker_support import run_cfg, scalars_json

pytestmark = pytest.mark.trackers


def test_tensorboard_and_scalars_json_share_the_global_iteration(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runner = Runner.from_cfg(Config(run_cfg(tmp_path, [dict(type="TensorboardVisBackend")])))
    runner.train()
    runner.visualizer.add_image("sample", torch.zeros(4, 4, 3, dtype=torch.uint8), step=16)
    runner.visualizer.close()
    records = scalars_json(runner.log_dir)
    val = [r for r in records if "accuracy/top1" in r]
    assert [(r["step"], r["iter"]) for r in val] == [(1, 8), (2, 16)]  # epoch, global iteration
    events = EventAccumulator(os.path.join(runner.log_dir, "vis_data"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [r["iter"] for r in records if "loss" in r]
    assert [e.step for e in events.Scalars("accuracy/top1")] == [8, 16]
    assert [e.step for e in events.Images("sample")] == [16]
    assert [e.value for e in events.Scalars("accuracy/top1")] == pytest.approx([r["accuracy/top1"] for r in val])
