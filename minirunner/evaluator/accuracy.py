"""`Accuracy`: top-k classification accuracy in percent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minirunner.registry import METRICS
from minirunner.utils import ConfigError

from .metric import BaseMetric


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy, in percent (0-100), of single-label classification.

    Reads the predictions the built-in classifiers return, one dict per sample with
    ``gt_label`` and ``pred_score`` (class scores) or, for top-1 only, ``pred_label``.
    A sample counts as correct at ``k`` when its true class is among the ``k`` highest
    scores (``torch.topk`` order, so ties go to the lower class index).

    Args:
        topk: the ``k`` values to report, an int or a tuple of ints.
        collect_device: see :class:`BaseMetric`.
        prefix: metric names become ``prefix/topK``; defaults to ``'accuracy'``.

    Example:
        >>> metric = Accuracy(topk=(1, 2))
        >>> metric.process(None, [
        ...     dict(pred_score=torch.tensor([0.7, 0.2, 0.1]), gt_label=torch.tensor(1)),
        ...     dict(pred_score=torch.tensor([0.1, 0.3, 0.6]), gt_label=torch.tensor(2))])
        >>> metric.evaluate(size=2)
        {'accuracy/top1': 50.0, 'accuracy/top2': 100.0}
    """

    default_prefix = "accuracy"

    def __init__(
        self,
        topk: int | Sequence[int] = (1,),
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(topk, int):
            ks: tuple = (topk,)
        else:
            ks = tuple(topk) if isinstance(topk, Sequence) else ()
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise ConfigError(
                f"must be a positive int or a tuple of them, got {topk!r}", key="topk"
            )
        self.topk = ks
        self._maxk = max(ks)

    def process(self, data_batch: Any, data_samples: Sequence[dict[str, Any]]) -> None:
        """Store, for each sample, where its true class ranks among the top ``max(topk)``
        scores (``max(topk)`` when it is not among them)."""
        if not data_samples:
            return
        first = data_samples[0]
        if "gt_label" not in first:
            raise KeyError(
                "Accuracy needs 'gt_label' in each prediction; pass the labels to the model "
                f"as data_samples (the prediction has keys {list(first)})"
            )
        if "pred_score" in first:
            scores = torch.stack([sample["pred_score"] for sample in data_samples])
            labels = _stack_labels(data_samples, "gt_label", scores.device)
            k = min(self._maxk, scores.shape[1])
            hits = scores.topk(k, dim=1).indices == labels.unsqueeze(1)
            rank = torch.where(hits.any(dim=1), hits.int().argmax(dim=1), self._maxk)
        elif "pred_label" in first:
            if self._maxk > 1:
                raise KeyError(
                    f"Accuracy(topk={self.topk}) needs 'pred_score' in each prediction; with "
                    "only 'pred_label', use topk=(1,)"
                )
            predicted = _stack_labels(data_samples, "pred_label", None)
            labels = _stack_labels(data_samples, "gt_label", predicted.device)
            rank = (predicted != labels).long()
        else:
            raise KeyError(
                "Accuracy needs 'pred_score' or 'pred_label' in each prediction, got keys "
                f"{list(first)}"
            )
        # One host transfer per batch; small ints are cheap to gather across ranks.
        self.results.extend(rank.tolist())

    def compute_metrics(self, results: list[int]) -> dict[str, float]:
        """``{'topK': percent of samples whose true class ranks below K}`` for each K."""
        ranks = torch.tensor(results, dtype=torch.long)
        total = max(len(results), 1)
        return {f"top{k}": (ranks < k).sum().item() * 100.0 / total for k in self.topk}


def _stack_labels(
    data_samples: Sequence[dict[str, Any]], key: str, device: torch.device | None
) -> torch.Tensor:
    labels = torch.stack(
        [torch.as_tensor(sample[key], device=device).reshape(()) for sample in data_samples]
    )
    return labels.long()
