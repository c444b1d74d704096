"""`Evaluator`: runs a list of metrics over the model's predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from minirunner.registry import EVALUATOR, METRICS, config_key
from minirunner.utils import ConfigError

from .metric import BaseMetric


@EVALUATOR.register_module()
class Evaluator:
    """Feeds each batch's predictions to every metric and merges their results.

    Args:
        metrics: a metric, a metric config (``dict(type='Accuracy', topk=(1, 5))``, built
            from ``METRICS``), or a list of them.

    Example:
        >>> import torch
        >>> evaluator = Evaluator(dict(type='Accuracy'))
        >>> evaluator.process([dict(pred_label=torch.tensor(3), gt_label=torch.tensor(3))])
        >>> evaluator.evaluate(size=1)
        {'accuracy/top1': 100.0}
    """

    def __init__(self, metrics: BaseMetric | Mapping | Sequence[BaseMetric | Mapping]) -> None:
        if isinstance(metrics, (BaseMetric, Mapping)):
            metrics = [metrics]
        self.metrics: list[BaseMetric] = []
        for index, metric in enumerate(metrics):
            if isinstance(metric, Mapping):
                with config_key(str(index)):
                    metric = METRICS.build(metric)
            if not isinstance(metric, BaseMetric):
                raise ConfigError(
                    f"must be a metric config such as dict(type='Accuracy') or a BaseMetric, "
                    f"got {type(metric).__name__}",
                    key=str(index),
                )
            self.metrics.append(metric)
        self._dataset_meta: dict | None = None

    @property
    def dataset_meta(self) -> dict | None:
        """Dataset information, passed on to every metric when set."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: dict | None) -> None:
        self._dataset_meta = meta
        for metric in self.metrics:
            metric.dataset_meta = meta

    def process(self, data_samples: Sequence[Any], data_batch: Any = None) -> None:
        """Give one batch's predictions (and the batch itself) to every metric."""
        for metric in self.metrics:
            metric.process(data_batch, data_samples)

    def evaluate(self, size: int) -> dict[str, Any]:
        """Evaluate every metric over the whole dataset (``size`` samples, all ranks).

        Raises:
            ValueError: when two metrics report the same name.
        """
        merged: dict[str, Any] = {}
        for metric in self.metrics:
            for name, value in metric.evaluate(size).items():
                if name in merged:
                    raise ValueError(
                        f"two metrics report '{name}'; give one of them another prefix"
                    )
                merged[name] = value
        return merged


def build_evaluator(cfg: Evaluator | BaseMetric | Mapping | Sequence) -> Evaluator:
    """Build the evaluator that ``val_evaluator``/``test_evaluator`` describe.

    Accepts an :class:`Evaluator` (returned as is), ``dict(type='Evaluator', metrics=...)``
    or any dict with a ``metrics`` key (built from ``EVALUATOR``), or a metric, a metric
    config or a list of them (wrapped in an :class:`Evaluator`). Raise errors relative to
    this config; callers add the outer key with ``config_key('val_evaluator')``.
    """
    if isinstance(cfg, Evaluator):
        return cfg
    if isinstance(cfg, Mapping) and "metrics" in cfg:
        cfg = dict(cfg)
        cfg.setdefault("type", "Evaluator")
        return EVALUATOR.build(cfg)
    if isinstance(cfg, (BaseMetric, Mapping, list, tuple)):
        return Evaluator(cfg)
    raise ConfigError(
        f"must be a metric config such as dict(type='Accuracy'), a list of them or an "
        f"Evaluator, got {type(cfg).__name__}"
    )
