"""ReduceOnPlateau: lower a value when a validation metric stops improving.

The logic is torch's ReduceLROnPlateau (``rule`` is torch's ``mode``, ``'less'``/``'greater'``
for ``'min'``/``'max'``), driven the reference engine's way: the runner calls ``step()`` after
each training epoch, which only counts epochs for ``begin``/``end``, and ``step(metrics)``
after each validation, which reads ``metrics[monitor]`` and may reduce the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Sequence

from minirunner.registry import PARAM_SCHEDULERS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .chainable import _is_number
from .param_scheduler import INF, _ParamScheduler, _checked_param_groups, _write_betas

_RULES = ("less", "greater")
_THRESHOLD_RULES = ("rel", "abs")
_TORCH_NAMES = {"min": "less", "max": "greater"}


@PARAM_SCHEDULERS.register_module()
class ReduceOnPlateauParamScheduler(_ParamScheduler):
    """Multiply the value by ``factor`` when ``monitor`` has not improved for a while.

    Args:
        optimizer: the optimizer or optimizer wrapper.
        param_name: the param group key to schedule.
        monitor: the key of the metric in the validation results. Defaults to ``'loss'``.
        rule: ``'less'`` (lower is better) or ``'greater'``. Defaults to ``'less'``.
        factor: the multiplier applied on a plateau, in [0, 1). Defaults to 0.1.
        patience: validations without improvement tolerated before reducing (the
            ``patience + 1``-th reduces). Defaults to 10.
        threshold: how much better a metric must be to count as an improvement.
        threshold_rule: ``'rel'`` (relative to the best) or ``'abs'``. Defaults to ``'rel'``.
        cooldown: validations to wait after a reduction before counting again.
        min_value: the lowest value, one number or one per param group. Defaults to 0.
        eps: a reduction smaller than this is skipped. Defaults to 1e-8.
        begin, end: the range of epochs in which validations count.
        last_step, by_epoch, verbose: see :class:`_ParamScheduler`; ``by_epoch`` must be True.

    Example:
        >>> param_scheduler = dict(type='ReduceOnPlateauLR', monitor='accuracy/top1',
        ...                        rule='greater', patience=2, factor=0.5)
    """

    need_val_args = True
    _iter_convertible = False

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        monitor: str = "loss",
        rule: str = "less",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_rule: str = "rel",
        cooldown: int = 0,
        min_value: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        if not by_epoch:
            raise self._error(
                "by_epoch",
                "got by_epoch=False, but it reads validation metrics, which come once per "
                "epoch; set by_epoch=True",
            )
        self._check_choice("rule", rule, _RULES)
        self._check_choice("threshold_rule", threshold_rule, _THRESHOLD_RULES)
        if not isinstance(monitor, str):
            raise self._error("monitor", f"got monitor={monitor!r}; it must be a metric name")
        if not _is_number(factor) or not 0 <= factor < 1:
            raise self._error("factor", f"got factor={factor!r}; it must be in [0, 1)")
        if not _is_number(threshold) or threshold < 0:
            raise self._error("threshold", f"got threshold={threshold!r}; it must be >= 0")
        if not _is_number(eps) or eps < 0:
            raise self._error("eps", f"got eps={eps!r}; it must be a number >= 0")
        for key, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self._error(key, f"got {key}={value!r}; it must be an int >= 0")
        groups = _checked_param_groups(type(self).__name__, optimizer)

        self.monitor = monitor
        self.rule = rule
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_rule = threshold_rule
        self.cooldown = cooldown
        self.eps = eps
        self.min_values = self._min_values(groups, optimizer, min_value)
        self.rule_worse = math.inf if rule == "less" else -math.inf
        self.best = self.rule_worse
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        # The base constructor's step() finds no metrics and only starts the epoch count.
        super().__init__(optimizer, param_name, begin, end, last_step, by_epoch, verbose)

    def _check_choice(self, key: str, value: Any, choices: tuple[str, ...]) -> None:
        if value in choices:
            return
        hint = did_you_mean(str(value), choices)
        if key == "rule" and value in _TORCH_NAMES:
            hint = f" torch calls it mode='{value}'; here it is rule='{_TORCH_NAMES[value]}'."
        raise self._error(
            key, f"got {key}={value!r}; it must be one of {quoted_list(choices)}.{hint}"
        )

    def _min_values(self, groups: list, optimizer: Any, min_value: Any) -> list:
        if not isinstance(min_value, (list, tuple)):
            if not _is_number(min_value):
                raise self._error(
                    "min_value", f"got min_value={min_value!r}; it must be a number"
                )
            return [min_value] * len(groups)
        raw = getattr(optimizer, "optimizer", optimizer)
        raw_count = len(getattr(raw, "param_groups", groups))
        values = list(min_value)
        if len(values) == raw_count and len(groups) == raw_count + 1:
            # The wrapper's extra group (the optimizer's defaults) follows the last real one.
            values.append(values[-1])
        if len(values) != len(groups) or not all(_is_number(v) for v in values):
            raise self._error(
                "min_value",
                f"got {len(min_value)} values in min_value={list(min_value)!r} for "
                f"{raw_count} param groups; give one number, or one per param group",
            )
        return values

    def step(self, metrics: Mapping | None = None) -> None:
        """Count an epoch (``metrics`` is None), or judge a validation's ``metrics``.

        Args:
            metrics: the validation results, ``{metric name: value}``.
        """
        if metrics is None:
            self._global_step += 1
            return
        if not isinstance(metrics, Mapping):
            raise TypeError(
                f"{type(self).__name__}.step expects the dict of validation metrics, got "
                f"{type(metrics).__name__}"
            )
        groups = self.optimizer.param_groups
        if self.begin <= self._global_step < self.end:
            self.last_step += 1
            if self.monitor not in metrics:
                names = [str(k) for k in metrics]
                raise ConfigError(
                    f"{type(self).__name__} monitors '{self.monitor}', which the validation "
                    f"metrics do not have; they are {quoted_list(names) or 'none'}."
                    f"{did_you_mean(self.monitor, names)}",
                    key="monitor",
                )
            self._judge(float(metrics[self.monitor]), groups)
        self._record_last_value(groups)

    def _judge(self, metric: float, groups: list[dict]) -> None:
        if self._is_better(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs <= self.patience:
            return
        name = self.param_name
        for group, min_value in zip(groups, self.min_values):
            value = max(float(group[name]) * self.factor, min_value)
            if group[name] - value > self.eps:
                group[name] = value
        if self._writes_betas:
            _write_betas(groups)
        if self.verbose:
            self._log_values(groups)
        self.cooldown_counter = self.cooldown
        self.num_bad_epochs = 0

    def _is_better(self, metric: float) -> bool:
        best = self.best
        if self.rule == "less":
            if self.threshold_rule == "rel":
                return metric < best * (1.0 - self.threshold)
            return metric < best - self.threshold
        if self.threshold_rule == "rel":
            return metric > best * (self.threshold + 1.0)
        return metric > best + self.threshold
