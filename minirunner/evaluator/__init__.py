"""Evaluation: :class:`Evaluator`, the :class:`BaseMetric` interface and :class:`Accuracy`."""

from .accuracy import Accuracy
from .evaluator import Evaluator, build_evaluator
from .metric import BaseMetric, collect_results

__all__ = ["Accuracy", "BaseMetric", "Evaluator", "build_evaluator", "collect_results"]
