"""Evaluator and build_evaluator."""

from __future__ import annotations

import pytest
import torch

from minirunner.evaluator import Accuracy, BaseMetric, Evaluator, build_evaluator
from minirunner.registry import EVALUATOR, METRICS, config_key
from minirunner.utils import ConfigError


class CountBatches(BaseMetric):
    default_prefix = "count"

    def process(self, data_batch, data_samples):
        self.results.append((data_batch, len(data_samples)))

    def compute_metrics(self, results):
        return dict(batches=len(results), samples=sum(n for _, n in results))


def _prediction(pred, gt):
    return dict(pred_label=torch.tensor(pred), gt_label=torch.tensor(gt))


def test_runs_every_metric_and_merges():
    count = CountBatches()
    evaluator = Evaluator([dict(type="Accuracy"), count])
    assert isinstance(evaluator.metrics[0], Accuracy) and evaluator.metrics[1] is count
    evaluator.process([_prediction(1, 1), _prediction(2, 0)], data_batch="batch-a")
    evaluator.process([_prediction(0, 0)], data_batch="batch-b")
    assert count.results == [("batch-a", 2), ("batch-b", 1)]
    assert evaluator.evaluate(size=3) == {
        "accuracy/top1": pytest.approx(200 / 3),
        "count/batches": 2,
        "count/samples": 3,
    }


def test_duplicate_metric_names_are_an_error():
    evaluator = Evaluator([dict(type="Accuracy"), dict(type="Accuracy")])
    evaluator.process([_prediction(1, 1)])
    with pytest.raises(ValueError, match="accuracy/top1"):
        evaluator.evaluate(1)


def test_dataset_meta_reaches_the_metrics():
    evaluator = Evaluator([CountBatches(), dict(type="Accuracy")])
    evaluator.dataset_meta = dict(classes=("a", "b"))
    assert all(m.dataset_meta == dict(classes=("a", "b")) for m in evaluator.metrics)


def test_registered():
    assert EVALUATOR.get("Evaluator") is Evaluator
    assert METRICS.get("Accuracy") is Accuracy
    built = EVALUATOR.build(dict(type="Evaluator", metrics=dict(type="Accuracy", topk=(1, 2))))
    assert built.metrics[0].topk == (1, 2)


def test_build_evaluator_forms():
    evaluator = Evaluator(dict(type="Accuracy"))
    assert build_evaluator(evaluator) is evaluator
    assert isinstance(build_evaluator(dict(type="Accuracy")).metrics[0], Accuracy)
    assert len(build_evaluator([dict(type="Accuracy"), CountBatches()]).metrics) == 2
    assert isinstance(build_evaluator(dict(metrics=[dict(type="Accuracy")])), Evaluator)
    assert isinstance(build_evaluator(Accuracy()), Evaluator)


def test_errors_name_the_key():
    with pytest.raises(ConfigError) as info, config_key("val_evaluator"):
        build_evaluator(dict(type="Acuracy"))
    assert info.value.key == "val_evaluator.0.type"
    assert "Did you mean 'Accuracy'" in str(info.value)
    with pytest.raises(ConfigError) as info, config_key("val_evaluator"):
        build_evaluator([dict(type="Accuracy"), dict(type="Accuracy", topk=0)])
    assert info.value.key == "val_evaluator.1.topk"
    with pytest.raises(ConfigError) as info:
        Evaluator([3])
    assert info.value.key == "0"
    with pytest.raises(ConfigError):
        build_evaluator("Accuracy")
