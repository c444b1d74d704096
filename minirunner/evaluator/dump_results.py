"""`DumpResults`: a metric that writes the model's predictions to a pickle file."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

from minirunner.logging import print_log
from minirunner.registry import METRICS
from minirunner.utils import ConfigError

from .metric import BaseMetric, _to_cpu


@METRICS.register_module()
class DumpResults(BaseMetric):
    """Collect every prediction (moved to the CPU) and save them, in dataset order, to
    ``out_file_path`` with ``pickle`` when evaluating; it reports no metric.

    The file is written once, by rank 0, through a temporary file renamed into place. It is
    a plain pickle, as MMEngine's: load it only if you trust where it came from
    (``torch.load(path, weights_only=True)`` cannot read it).

    Args:
        out_file_path: where to write; must end with ``.pkl`` or ``.pickle``.
        collect_device, collect_dir: see :class:`BaseMetric`.

    Example:
        >>> test_evaluator = dict(type='DumpResults', out_file_path='work_dirs/x/preds.pkl')  # doctest: +SKIP
    """

    def __init__(self, out_file_path: str, collect_device: str = "cpu", collect_dir: str | None = None) -> None:
        super().__init__(collect_device=collect_device, collect_dir=collect_dir)
        if not isinstance(out_file_path, str) or not out_file_path.endswith((".pkl", ".pickle")):
            raise ConfigError(
                f"must be a file name ending with .pkl or .pickle, got {out_file_path!r}", key="out_file_path"
            )
        self.out_file_path = out_file_path

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Keep every prediction of the batch, on the CPU."""
        self.results.extend(_to_cpu(list(data_samples)))

    def compute_metrics(self, results: list[Any]) -> dict:
        """Write ``results`` to ``out_file_path``; returns ``{}``."""
        folder = os.path.dirname(os.path.abspath(self.out_file_path))
        os.makedirs(folder, exist_ok=True)
        temporary = f"{self.out_file_path}.tmp.{os.getpid()}"
        with open(temporary, "wb") as file:
            pickle.dump(results, file)
        os.replace(temporary, self.out_file_path)
        print_log(f"{len(results)} predictions saved to {self.out_file_path}", logger="current")
        return {}
