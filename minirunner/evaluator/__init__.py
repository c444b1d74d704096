"""Evaluation: :class:`Evaluator`, the :class:`BaseMetric` interface, :class:`Accuracy` and
:class:`DumpResults`."""

from .accuracy import Accuracy
from .dump_results import DumpResults
from .evaluator import Evaluator, build_evaluator
from .metric import BaseMetric, collect_results

__all__ = ["Accuracy", "DumpResults", "BaseMetric", "Evaluator", "build_evaluator", "collect_results"]
