"""`EarlyStoppingHook`: stop training when a validation metric stops improving."""

from __future__ import annotations

import logging
import math
from typing import Any

from minirunner.logging import print_log
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .hook import Hook
from .metric_rule import infer_rule

RULES = ("greater", "less")


@HOOKS.register_module()
class EarlyStoppingHook(Hook):
    """Stop training once the metric ``monitor`` has not improved for ``patience`` validations.

    After each validation, in this order:

    1. a NaN or infinite value stops training at once (when ``check_finite``);
    2. a value strictly better than ``stopping_threshold`` (``>`` for ``'greater'``, ``<``
       for ``'less'``) stops training at once;
    3. a value that improves on the best so far by at least ``min_delta``
       (``value >= best + min_delta`` for ``'greater'``, ``value <= best - min_delta`` for
       ``'less'``) becomes the new best and resets the count; any other value adds one to
       the count, and training stops when the count reaches ``patience``.

    The first value always becomes the best. Stopping sets
    ``runner.train_loop.stop_training``: an epoch-based loop finishes the current epoch's
    hooks and stops before the next epoch, an iteration-based loop before its next
    iteration.

    Args:
        monitor: the metric's key in the validation results, e.g. ``'accuracy/top1'``.
        rule: ``'greater'`` or ``'less'``: which direction is better. When None, it is
            inferred from the name: names with ``loss`` are ``'less'``; names with ``acc``,
            ``top``, ``AR@``, ``auc``, ``precision``, ``mAP``, ``mDice``, ``mIoU``, ``mAcc``
            or ``aAcc`` are ``'greater'``.
        min_delta: the smallest change that counts as an improvement (>= 0).
        strict: raise when ``monitor`` is not among the metrics; otherwise warn once and
            skip.
        check_finite: stop when the metric becomes NaN or infinite.
        patience: the number of validations in a row without improvement that stop training.
        stopping_threshold: stop as soon as the metric is better than this value.

    Example:
        >>> custom_hooks = [dict(type='EarlyStoppingHook', monitor='accuracy/top1',
        ...                      patience=3, min_delta=0.1)]
    """

    priority = "LOWEST"

    def __init__(
        self,
        monitor: str,
        rule: str | None = None,
        min_delta: float = 0.1,
        strict: bool = False,
        check_finite: bool = True,
        patience: int = 5,
        stopping_threshold: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"monitor must be a metric name, got {monitor!r}", key="monitor")
        if rule is None:
            rule = infer_rule(monitor)
        elif rule not in RULES:
            raise ConfigError(
                f"unknown rule {rule!r}.{did_you_mean(str(rule), RULES)} Use 'greater' (larger "
                "is better) or 'less' (smaller is better)",
                key="rule",
            )
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise ConfigError(f"min_delta must be a number >= 0, got {min_delta!r}", key="min_delta")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(
                f"patience must be an int >= 1 (validations without improvement), got {patience!r}",
                key="patience",
            )
        if stopping_threshold is not None and (
            isinstance(stopping_threshold, bool) or not isinstance(stopping_threshold, (int, float))
        ):
            raise ConfigError(
                f"stopping_threshold must be a number or None, got {stopping_threshold!r}",
                key="stopping_threshold",
            )
        self.monitor = monitor
        self.rule = rule
        self.min_delta = float(min_delta)
        self.strict = strict
        self.check_finite = check_finite
        self.patience = patience
        self.stopping_threshold = stopping_threshold

        self.best_score = -math.inf if rule == "greater" else math.inf
        self.wait_count = 0
        self._warned_missing = False

    def before_train(self, runner: Any) -> None:
        """Check that the training loop has the ``stop_training`` flag this hook sets."""
        if not hasattr(runner.train_loop, "stop_training"):
            raise RuntimeError(
                f"EarlyStoppingHook needs a train loop with a 'stop_training' attribute that it "
                f"reads; {type(runner.train_loop).__name__} has none. Add one to the loop class"
            )

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Compare the monitored metric with the best so far and stop training if needed."""
        metrics = metrics or {}
        if self.monitor not in metrics:
            available = quoted_list(metrics) or "none"
            if self.strict:
                raise ConfigError(
                    f"the metric {self.monitor!r} is not among the validation results "
                    f"({available}).{did_you_mean(self.monitor, metrics)} Set monitor to one of "
                    "them, or strict=False to skip early stopping when it is missing",
                    key="monitor",
                )
            if not self._warned_missing:
                self._warned_missing = True
                print_log(
                    f"EarlyStoppingHook: the metric {self.monitor!r} is not among the validation "
                    f"results ({available}).{did_you_mean(self.monitor, metrics)} Early stopping is "
                    "skipped while it is missing",
                    logger="current",
                    level=logging.WARNING,
                )
            return
        reason = self._check(float(metrics[self.monitor]))
        if reason is None:
            return
        train_loop = getattr(runner, "train_loop", None)
        if train_loop is not None:
            train_loop.stop_training = True
        print_log(f"Early stopping: {reason}", logger="current")

    def _check(self, score: float) -> str | None:
        """Update the best score and the count; the reason to stop, or None to go on."""
        greater = self.rule == "greater"
        if self.check_finite and not math.isfinite(score):
            return (
                f"{self.monitor} = {score} is not finite (best so far: {self.best_score:.4g})"
            )
        if self.stopping_threshold is not None and (
            score > self.stopping_threshold if greater else score < self.stopping_threshold
        ):
            self.best_score = score
            return (
                f"{self.monitor} = {score:.4g} is {self.rule} than the stopping threshold "
                f"{self.stopping_threshold}"
            )
        # A NaN (with check_finite=False) never counts as an improvement; the reference would
        # make it the best score and then never stop.
        if greater:
            improved = score >= self.best_score + self.min_delta
        else:
            improved = score <= self.best_score - self.min_delta
        if improved:
            self.best_score = score
            self.wait_count = 0
            return None
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return (
                f"{self.monitor} has not improved by {self.min_delta:g} or more in the last "
                f"{self.wait_count} validations (best: {self.best_score:.4g})"
            )
        return None

    def state_dict(self) -> dict:
        """The best score and the count of validations without improvement."""
        return {
            "monitor": self.monitor,
            "rule": self.rule,
            "best_score": float(self.best_score),
            "wait_count": int(self.wait_count),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; ignored (with a warning) for another metric or rule."""
        if not state:
            return
        if state.get("monitor", self.monitor) != self.monitor or state.get("rule", self.rule) != self.rule:
            print_log(
                f"EarlyStoppingHook: the checkpoint tracked {state.get('monitor')!r} "
                f"({state.get('rule')}), this run tracks {self.monitor!r} ({self.rule}); "
                "starting the count afresh",
                logger="current",
                level=logging.WARNING,
            )
            return
        self.best_score = float(state["best_score"])
        self.wait_count = int(state["wait_count"])
