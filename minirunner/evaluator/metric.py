"""`BaseMetric`: accumulates per-sample results and computes metrics across all ranks."""

from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from minirunner import dist
from minirunner.logging import print_log
from minirunner.utils import ConfigError

_COLLECT_DEVICES = ("cpu", "gpu")


class BaseMetric(metaclass=ABCMeta):
    """Base class of metrics: ``process`` each batch, then ``evaluate`` once per run.

    :meth:`process` appends one entry per sample to :attr:`results` (keep entries small:
    they are sent between processes). :meth:`evaluate` gathers every rank's entries, puts
    them back in dataset order, drops the padding samples that ``DefaultSampler(round_up=
    True)`` added, and calls :meth:`compute_metrics` on rank 0; every rank returns the same
    dict.

    Args:
        collect_device: ``'cpu'`` moves the tensors in the results to the CPU before they
            are gathered; ``'gpu'`` gathers them where they are (the process group's
            backend must support that device, e.g. NCCL for CUDA tensors).
        prefix: prepended to every metric name as ``prefix/name``; defaults to the class
            attribute ``default_prefix`` (None: no prefix).
        collect_dir: accepted for MMEngine configs (only with ``collect_device='cpu'``, as
            there); results are gathered through the process group, never through files, so
            it is not used.

    Example:
        >>> class MeanError(BaseMetric):
        ...     def process(self, data_batch, data_samples):
        ...         self.results.extend(float(s['error']) for s in data_samples)
        ...     def compute_metrics(self, results):
        ...         return dict(error=sum(results) / len(results))
        >>> metric = MeanError(prefix='val')
        >>> metric.process(None, [dict(error=1.0), dict(error=3.0)])
        >>> metric.evaluate(size=2)
        {'val/error': 2.0}
    """

    default_prefix: str | None = None

    def __init__(self, collect_device: str = "cpu", prefix: str | None = None, collect_dir: str | None = None) -> None:
        if collect_device not in _COLLECT_DEVICES:
            raise ConfigError(
                f"must be 'cpu' or 'gpu', got {collect_device!r}", key="collect_device"
            )
        if collect_dir is not None and collect_device != "cpu":
            raise ConfigError(
                f"collect_dir is only used with collect_device='cpu' (got {collect_device!r}); remove it",
                key="collect_dir",
            )
        self.collect_device = collect_device
        self.collect_dir = collect_dir
        self.prefix = prefix if prefix is not None else self.default_prefix
        self.results: list[Any] = []
        self._dataset_meta: dict | None = None

    @property
    def dataset_meta(self) -> dict | None:
        """Information about the dataset (class names, ...) that the evaluator passes on."""
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta: dict | None) -> None:
        self._dataset_meta = meta

    @abstractmethod
    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Add the results of one batch to :attr:`results`.

        Args:
            data_batch: the batch from the dataloader (may be None).
            data_samples: the model's predictions for the batch, one per sample.
        """

    @abstractmethod
    def compute_metrics(self, results: list[Any]) -> dict[str, Any]:
        """Compute the metrics from every sample's results (in dataset order)."""

    def evaluate(self, size: int) -> dict[str, Any]:
        """Gather the results of all ranks and compute the metrics.

        Args:
            size: the dataset's length; results past it are padding and are dropped.

        Returns:
            the metrics, keys prefixed with ``prefix/`` when a prefix is set. The results
            are cleared for the next evaluation.
        """
        if not self.results:
            print_log(
                f"{type(self).__name__} got no results to evaluate: check that the "
                "dataloader yields batches and that process() fills self.results",
                logger="current",
                level=logging.WARNING,
            )
        # A copy either way: self.results is cleared below, after the gather.
        results = _to_cpu(self.results) if self.collect_device == "cpu" else list(self.results)
        gathered = collect_results(results, size)
        if dist.get_rank() == 0:
            metrics = self.compute_metrics(gathered)
            if self.prefix:
                metrics = {f"{self.prefix}/{name}": value for name, value in metrics.items()}
        else:
            metrics = None
        metrics = dist.broadcast_object(metrics, src=0)
        self.results.clear()
        return metrics


def collect_results(results: list[Any], size: int) -> list[Any]:
    """Gather every rank's ``results`` and return them in dataset order, cut to ``size``.

    Rank ``r`` of ``w`` holds the samples at positions ``r, r + w, ...`` of the sampler's
    order (see :class:`~minirunner.dataset.DefaultSampler`), so taking one result from each
    rank in turn restores that order; the padding a rounded-up sampler added comes last and
    is cut off. Ranks may hold different numbers of results (``round_up=False``).
    """
    parts = dist.all_gather_object(results)
    if len(parts) == 1:
        return list(parts[0][:size])
    ordered: list[Any] = []
    longest = max(len(part) for part in parts)
    for position in range(longest):
        for part in parts:
            if position < len(part):
                ordered.append(part[position])
    return ordered[:size]


def _to_cpu(data: Any) -> Any:
    if isinstance(data, torch.Tensor):
        return data.cpu()
    if isinstance(data, Mapping):
        return {key: _to_cpu(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_to_cpu(item) for item in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_to_cpu(item) for item in data)
    return data
