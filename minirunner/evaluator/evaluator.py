"""`Evaluator`: runs a list of metrics over the model's predictions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
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
        if isinstance(metrics, (BaseMetric, Mapping)) or not isinstance(metrics, Sequence):
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
        """Give one batch's predictions (and the batch itself) to every metric.

        A prediction with a ``to_dict()`` method (a data element) is passed as that dict,
        as in MMEngine; dicts and other values are passed as they are.
        """
        samples = [_as_plain(sample) for sample in data_samples]
        for metric in self.metrics:
            metric.process(data_batch, samples)

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

    def offline_evaluate(self, data_samples: Sequence[Any], data: Sequence[Any] | None = None, chunk_size: int = 1) -> dict[str, Any]:
        """Evaluate predictions computed earlier (e.g. loaded from a results file).

        The predictions (and, when given, the matching samples of the dataset, grouped
        field by field like ``pseudo_collate``) are processed ``chunk_size`` at a time, then
        evaluated over all of them.

        Raises:
            ValueError: ``data`` is given and its length differs from ``data_samples``'.

        Example:
            >>> evaluator = Evaluator(dict(type='Accuracy'))
            >>> evaluator.offline_evaluate([dict(pred_label=1, gt_label=1), dict(pred_label=0, gt_label=1)])
            {'accuracy/top1': 50.0}
        """
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        batches = None
        if data is not None:
            if len(data_samples) != len(data):
                raise ValueError(
                    f"data_samples and data must have the same length, got {len(data_samples)} predictions "
                    f"and {len(data)} data samples"
                )
            batches = _chunks(data, chunk_size)
        size = 0
        for chunk in _chunks(data_samples, chunk_size):
            data_batch = _group_fields(next(batches)) if batches is not None else None
            size += len(chunk)
            self.process(chunk, data_batch)
        return self.evaluate(size)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _group_fields(samples: list[Any]) -> Any:
    """Samples grouped field by field without stacking (what ``pseudo_collate`` does; kept
    here so the evaluator does not depend on the dataset package)."""
    first = samples[0]
    if isinstance(first, Mapping):
        return {key: _group_fields([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (list, tuple)) and not isinstance(first, str) and not hasattr(first, "_fields"):
        if all(len(sample) == len(first) for sample in samples):
            return type(first)(_group_fields(list(group)) for group in zip(*samples))
    return list(samples)


def _as_plain(sample: Any) -> Any:
    if isinstance(sample, Mapping):
        return sample
    to_dict = getattr(sample, "to_dict", None)
    return to_dict() if callable(to_dict) else sample


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
