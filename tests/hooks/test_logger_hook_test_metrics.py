"""runner.test() writes its metrics as JSON beside the log and into scalars.json (issue 21, item 6)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from minirunner.evaluator import BaseMetric
from minirunner.registry import METRICS
from minirunner.runner import Runner
from runner_support import loader_cfg


@METRICS.register_module(name="TestMetricsJsonMetric")
class CountAndMatrix(BaseMetric):
    """A scalar and a non-scalar metric."""

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(1 for _ in data_samples)

    def compute_metrics(self, results) -> dict:
        return {"count": float(len(results)), "matrix": torch.eye(2)}


def test_test_metrics_are_written_as_json_and_scalars(tmp_path):
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        test_dataloader=loader_cfg(6, 3, shuffle=False),
        test_cfg=dict(),
        test_evaluator=dict(type="TestMetricsJsonMetric"),
    )
    metrics = runner.test()
    written = json.loads(open(os.path.join(runner.log_dir, f"{runner.timestamp}.json")).read())
    assert written == {"count": pytest.approx(float(metrics["count"])), "matrix": [[1.0, 0.0], [0.0, 1.0]]}
    lines = [json.loads(line) for line in open(os.path.join(runner.log_dir, "vis_data", "scalars.json"))]
    assert lines and lines[-1]["count"] == 6.0 and "matrix" not in lines[-1]
