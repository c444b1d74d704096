"""Accuracy: top-k numbers checked against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from minirunner.evaluator import Accuracy
from minirunner.model import MLPClassifier
from minirunner.registry import METRICS
from minirunner.utils import ConfigError


def _samples(scores, labels):
    return [
        dict(pred_score=torch.tensor(s), pred_label=torch.tensor(s).argmax(), gt_label=torch.tensor(g))
        for s, g in zip(scores, labels)
    ]


SCORES = [
    [0.1, 0.6, 0.3, 0.0],  # ranking 1, 2, 0, 3
    [0.5, 0.2, 0.2, 0.1],  # ranking 0, then 1 and 2 tied (topk puts the lower index first)
    [0.3, 0.1, 0.4, 0.2],  # ranking 2, 0, 3, 1
    [0.25, 0.25, 0.4, 0.1],  # ranking 2, then 0 and 1 tied
    [0.0, 0.1, 0.2, 0.7],  # ranking 3, 2, 1, 0
]
LABELS = [1, 2, 0, 3, 0]
# Position of the label in each ranking: 0, 2, 1, 3, 3.
# top1: 1 of 5 = 20%; top2: 2 of 5 = 40%; top3: 3 of 5 = 60%; top4: 100%.


def test_topk_percentages_by_hand():
    metric = Accuracy(topk=(1, 2, 3, 4))
    metric.process(None, _samples(SCORES[:2], LABELS[:2]))
    metric.process(None, _samples(SCORES[2:], LABELS[2:]))
    assert metric.evaluate(size=5) == {
        "accuracy/top1": pytest.approx(20.0),
        "accuracy/top2": pytest.approx(40.0),
        "accuracy/top3": pytest.approx(60.0),
        "accuracy/top4": pytest.approx(100.0),
    }
    assert metric.results == []


def test_default_is_top1_in_percent_and_k_beyond_classes_counts_all():
    metric = Accuracy()
    metric.process(None, _samples(SCORES, LABELS))
    assert metric.evaluate(5) == {"accuracy/top1": pytest.approx(20.0)}
    wide = Accuracy(topk=10)
    wide.process(None, _samples(SCORES, LABELS))
    assert wide.evaluate(5) == {"accuracy/top10": pytest.approx(100.0)}


def test_pred_label_only_gives_top1():
    metric = Accuracy(prefix="val")
    metric.process(
        None,
        [dict(pred_label=torch.tensor(p), gt_label=g) for p, g in [(1, 1), (0, 2), (3, 3), (2, 2)]],
    )
    assert metric.evaluate(4) == {"val/top1": pytest.approx(75.0)}
    with pytest.raises(KeyError, match="pred_score"):
        Accuracy(topk=(1, 5)).process(None, [dict(pred_label=torch.tensor(1), gt_label=1)])


def test_missing_keys_are_explained():
    with pytest.raises(KeyError, match="gt_label"):
        Accuracy().process(None, [dict(pred_label=torch.tensor(1))])
    with pytest.raises(KeyError, match="pred_score"):
        Accuracy().process(None, [dict(gt_label=torch.tensor(1))])


def test_matches_the_classifier_predictions():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=5, hidden_dims=(7,), num_classes=6).eval()
    inputs, labels = torch.randn(40, 5), torch.randint(6, (40,))
    metric = METRICS.build(dict(type="Accuracy", topk=(1, 3)))
    for start in range(0, 40, 16):
        batch = dict(inputs=inputs[start : start + 16], data_samples=labels[start : start + 16])
        metric.process(batch, model.val_step(batch))
    logits = model(inputs)
    top3 = logits.topk(3, dim=1).indices
    expected_top1 = (logits.argmax(1) == labels).float().mean().item() * 100
    expected_top3 = (top3 == labels[:, None]).any(1).float().mean().item() * 100
    result = metric.evaluate(40)
    assert result["accuracy/top1"] == pytest.approx(expected_top1)
    assert result["accuracy/top3"] == pytest.approx(expected_top3)


@pytest.mark.parametrize("topk", [0, (), (1, 0), 1.5, (True,)])
def test_bad_topk(topk):
    with pytest.raises(ConfigError) as info:
        Accuracy(topk=topk)
    assert info.value.key == "topk"
