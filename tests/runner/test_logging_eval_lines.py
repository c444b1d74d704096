"""Validation/test summary lines show every metric, non-scalar ones too, then data_time and
time, as MMEngine's LogProcessor.get_log_after_epoch does; the returned dict keeps the
scalars (with_non_scalar=True adds the others)."""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace

import pytest
import torch

import minirunner.runner.log_processor as log_processor_module
from minirunner.evaluator import BaseMetric
from minirunner.logging import MessageHub
from minirunner.registry import METRICS
from minirunner.runner import LogProcessor
from minirunner.testing import RunnerTestCase


@pytest.fixture(autouse=True)
def no_cuda_memory(monkeypatch):
    monkeypatch.setattr(log_processor_module, "_max_memory_mb", lambda: None)


def _runner(hub, epoch=1, val_len=4):
    return SimpleNamespace(message_hub=hub, epoch=epoch, val_dataloader=range(val_len), test_dataloader=range(val_len))


def _hub_after_validation(name: str) -> MessageHub:
    """What the hub holds after a validation of 4 iterations with a scalar and two
    non-scalar metrics (scalars as scalars, the others as runtime info)."""
    hub = MessageHub(name)
    for i in range(4):
        hub.update_scalar("val/data_time", 0.001 * (i + 1))
        hub.update_scalar("val/time", 0.01 * (i + 1))
    hub.update_scalar("val/accuracy/top1", 75.0)
    hub.update_info("val/per_class", [50.0, 100.0])
    hub.update_info("val/confusion", torch.tensor([[1, 0], [1, 2]]))
    hub.update_info("epoch", 1)  # not a val/ key: never shown
    return hub


def test_line_shows_scalars_then_non_scalars_then_timings():
    hub = _hub_after_validation("eval_lines_order")
    tag, line = LogProcessor().get_log_after_epoch(_runner(hub), batch_idx=4, mode="val")
    matrix = str(torch.tensor([[1, 0], [1, 2]]))
    assert line == (
        "Epoch(val) [1][4/4]  accuracy/top1: 75.0000  per_class: [50.0, 100.0]  "
        f"confusion: \n{matrix}\n  data_time: 0.0025  time: 0.0250"
    )
    assert tag == {"accuracy/top1": 75.0}


def test_with_non_scalar_returns_them_too():
    hub = _hub_after_validation("eval_lines_non_scalar")
    tag, _ = LogProcessor().get_log_after_epoch(_runner(hub), batch_idx=4, mode="val", with_non_scalar=True)
    assert set(tag) == {"accuracy/top1", "per_class", "confusion"}
    assert tag["per_class"] == [50.0, 100.0] and torch.equal(tag["confusion"], torch.tensor([[1, 0], [1, 2]]))
    tag, _ = LogProcessor(log_with_hierarchy=True).get_log_after_epoch(
        _runner(hub), batch_idx=4, mode="val", with_non_scalar=True
    )
    assert set(tag) == {"val/accuracy/top1", "val/per_class", "val/confusion"}


def test_test_lines_read_test_keys_only():
    hub = _hub_after_validation("eval_lines_test")
    hub.update_scalar("test/accuracy/top1", 80.0)
    hub.update_info("test/per_class", [60.0, 100.0])
    _, line = LogProcessor().get_log_after_epoch(_runner(hub), batch_idx=4, mode="test")
    assert line == "Epoch(test) [4/4]  accuracy/top1: 80.0000  per_class: [60.0, 100.0]"


@METRICS.register_module(name="EvalLinesPerClassMetric", force=True)
class PerClassMetric(BaseMetric):
    """A scalar and a list, like a per-class accuracy."""

    def process(self, data_batch, data_samples):
        self.results.append(1)

    def compute_metrics(self, results):
        return dict(mean_acc=50.0, per_class=[25.0, 75.0])


class TestRunnerLogsNonScalarMetrics(RunnerTestCase):
    # RuntimeInfoHook keeps non-scalar metrics as runtime info, as MMEngine's does.
    def test_val_line_of_a_run(self):
        cfg = copy.deepcopy(self.epoch_based_cfg)
        cfg.val_evaluator = [dict(type="EvalLinesPerClassMetric")]
        runner = self.build_runner(cfg)
        lines = []

        class Collect(logging.Handler):
            def emit(self, record):
                lines.append(record.getMessage())

        runner.logger.addHandler(Collect())
        metrics = runner.val()
        assert metrics == dict(mean_acc=50.0, per_class=[25.0, 75.0])
        summary = [line for line in lines if line.startswith("Epoch(val)") and "mean_acc" in line]
        assert summary and "per_class: [25.0, 75.0]" in summary[-1]
        assert "data_time: " in summary[-1] and summary[-1].rstrip().split("  ")[-1].startswith("time: ")
