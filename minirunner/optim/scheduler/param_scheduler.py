"""`_ParamScheduler`: the base of every scheduler of an optimizer hyper-parameter.

A scheduler owns one hyper-parameter (``lr``, ``momentum``, ``weight_decay``, ...) of every
param group of one optimizer. The runner calls :meth:`_ParamScheduler.step` after each
iteration (``by_epoch=False``) or after each epoch (``by_epoch=True``); the scheduler counts
those calls and changes the value while ``begin <= count < end``.

Schedulers are chainable: most of them multiply the value the group holds now by the ratio
between two consecutive points of their curve, so several schedulers active at once multiply,
and a value outside every scheduler's range stays where the last one left it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from minirunner.logging import print_log
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .step_order import StepWatch

#: The ``end`` of a scheduler that never stops (the reference engine's value).
INF = int(1e9)
# Attributes that are not part of a scheduler's state dict: the optimizer, and the step-order
# watch (weak references to live objects).
_NOT_STATE = ("optimizer", "_step_watch")


class _ParamScheduler:
    """Base class of the parameter schedulers.

    Building one applies its step 0 at once: a ``LinearLR(start_factor=0.1)`` has already
    multiplied the learning rate by 0.1 when its constructor returns.

    Args:
        optimizer: a ``torch.optim.Optimizer`` or an optimizer wrapper (anything with a
            ``param_groups`` list, and ``optimizer`` for the wrapped torch optimizer).
        param_name: the param group key to schedule, such as ``'lr'``.
        begin: first step (counted in calls to :meth:`step`) at which the value changes.
        end: first step at which it no longer changes (exclusive). Defaults to :data:`INF`.
        last_step: the step the schedule is at; -1 (the default) means it has not started.
            Another value resumes a run without a state dict and needs the
            ``initial_<param_name>`` values the previous run left in the param groups.
        by_epoch: whether the runner steps it after each epoch (True) or after each
            iteration (False).
        verbose: log every value the scheduler sets.

    Subclasses change the values in :meth:`_update` (in place, one pass over the groups) or,
    as in the reference engine, return the new values from ``_get_value()``. A subclass
    whose arguments are lengths in steps lists them in ``_epoch_step_args`` (rounded down to
    whole iterations like ``begin``/``end``) or ``_epoch_span_args`` (scaled exactly), so
    :meth:`build_iter_from_epoch` converts them.

    Example:
        >>> import torch
        >>> from minirunner.optim.scheduler import StepLR
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        >>> scheduler = StepLR(opt, step_size=2, gamma=0.5)
        >>> for _ in range(4):
        ...     scheduler.step()
        >>> opt.param_groups[0]['lr']
        0.25
    """

    #: Arguments counted in steps; ``convert_to_iter_based`` multiplies them by the epoch
    #: length and rounds down to whole iterations, as it does ``begin`` and ``end``.
    _epoch_step_args: ClassVar[tuple[str, ...]] = ()
    #: Arguments counted in steps that are scaled without rounding (a cosine's half period).
    _epoch_span_args: ClassVar[tuple[str, ...]] = ()
    #: False for schedules that only make sense per epoch (ReduceOnPlateau).
    _iter_convertible: ClassVar[bool] = True
    #: True when the runner must call ``step(metrics)`` after each validation.
    need_val_args: ClassVar[bool] = False
    #: Set per instance by the momentum schedulers of Adam-style optimizers, whose momentum
    #: lives in ``betas[0]``: the scheduled ``momentum`` key is copied back into the tuple.
    _writes_betas: bool = False

    def __init__(
        self,
        optimizer: Any,
        param_name: str,
        begin: int = 0,
        end: int = INF,
        last_step: int = -1,
        by_epoch: bool = True,
        verbose: bool = False,
    ) -> None:
        groups = _checked_param_groups(type(self).__name__, optimizer)
        begin, end = self._check_range(begin, end)
        if isinstance(last_step, bool) or not isinstance(last_step, int) or last_step < -1:
            raise self._error("last_step", f"got last_step={last_step!r}; it must be an int >= -1")
        self._check_param_name(groups, param_name)

        initial_key = f"initial_{param_name}"
        if last_step == -1:
            for group in groups:
                # Kept if present: the first scheduler of a parameter fixes its base value.
                group.setdefault(initial_key, group[param_name])
        else:
            missing = [i for i, group in enumerate(groups) if initial_key not in group]
            if missing:
                raise self._error(
                    "last_step",
                    f"got last_step={last_step}, which resumes a schedule, but param groups "
                    f"{missing} have no '{initial_key}' (the value a scheduler records when it "
                    "starts); load the optimizer's state dict first, or use last_step=-1",
                )

        self.optimizer = optimizer
        self.param_name = param_name
        self.begin = begin
        self.end = end
        self.by_epoch = by_epoch
        self.verbose = verbose
        self.last_step = last_step
        self.base_values = [group[initial_key] for group in groups]
        self._last_value = [group[param_name] for group in groups]
        self._global_step = -1
        # Lets the second step() warn about a wrong call order; not part of the state.
        self._step_watch = StepWatch(optimizer)
        self.step()

    # ------------------------------------------------------------------ stepping
    def step(self) -> None:
        """Advance the schedule by one step and set the value of every param group.

        Costs one pass over the param groups; nothing is allocated per step. The first
        call after the constructor's warns (UserWarning) when the optimizer has not stepped
        yet, as PyTorch's schedulers do; steps held back by gradient accumulation or skipped
        by an AMP loss scaler count as steps.
        """
        step = self._global_step = self._global_step + 1
        if step == 1:
            self._step_watch.check(self)
        groups = self.optimizer.param_groups
        if self.begin <= step < self.end:
            self.last_step += 1
            self._update(groups)
            if self._writes_betas:
                _write_betas(groups)
            if self.verbose:
                self._log_values(groups)
        self._record_last_value(groups)

    def _update(self, groups: list[dict]) -> None:
        """Set the values for step ``self.last_step`` (reference-style fallback).

        The built-in schedulers override this; a subclass written for the reference engine
        overrides ``_get_value()`` instead, which returns one value per group.
        """
        name = self.param_name
        for group, value in zip(groups, self._get_value()):
            group[name] = value

    def _get_value(self) -> list:
        raise NotImplementedError(
            f"{type(self).__name__} must implement _update(groups) or _get_value()"
        )

    def _record_last_value(self, groups: list[dict]) -> None:
        last = self._last_value
        name = self.param_name
        if len(last) != len(groups):  # groups were added to the optimizer
            self._last_value = [group[name] for group in groups]
            return
        for i, group in enumerate(groups):
            last[i] = group[name]

    def _log_values(self, groups: list[dict]) -> None:
        name = self.param_name
        unit = "epoch" if self.by_epoch else "iter"
        for i, group in enumerate(groups):
            print_log(
                f"{type(self).__name__}: {name} of param group {i} set to {group[name]:.4e} "
                f"({unit} step {self.last_step} of the schedule)",
                logger="current",
            )

    def get_last_value(self) -> list:
        """The value of every param group after the last :meth:`step` (a new list)."""
        return list(self._last_value)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything but the optimizer, as plain Python values (``weights_only`` loadable)."""
        return {
            key: copy.deepcopy(value)
            for key, value in self.__dict__.items()
            if key not in _NOT_STATE
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore the state that :meth:`state_dict` returned.

        Raises ValueError when the state holds keys this scheduler does not have, which
        means it belongs to a scheduler of another type (the list of schedulers changed).
        """
        unknown = [key for key in state_dict if key not in self.__dict__ or key in _NOT_STATE]
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has keys "
                f"{quoted_list(unknown)} that this scheduler does not have; it was saved by "
                "another type of scheduler (did the param_scheduler list change?)"
            )
        for key, value in state_dict.items():
            setattr(self, key, copy.deepcopy(value))

    # ------------------------------------------------------------------ epoch -> iteration
    @classmethod
    def build_iter_from_epoch(
        cls,
        *args: Any,
        begin: float = 0,
        end: float = INF,
        by_epoch: bool = True,
        epoch_length: int | None = None,
        **kwargs: Any,
    ) -> "_ParamScheduler":
        """Build an iteration-based scheduler from an epoch-based configuration.

        ``begin``, ``end`` and the step-length arguments of the class (``milestones``,
        ``step_size``, ``T_max``, ``total_steps``, ``periods``, passed by keyword) are
        multiplied by ``epoch_length``; fractional epochs are allowed and round down to
        whole iterations as in the reference engine (``T_max`` is scaled exactly).

        Example:
            >>> import torch
            >>> from minirunner.optim.scheduler import MultiStepLR
            >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
            >>> s = MultiStepLR.build_iter_from_epoch(opt, milestones=[1.5], epoch_length=10)
            >>> s.milestones, s.by_epoch
            ({15: 1}, False)
        """
        kwargs.update(begin=begin, end=end, by_epoch=by_epoch)
        return cls(*args, **cls._iter_based_kwargs(kwargs, epoch_length))

    @classmethod
    def _iter_based_kwargs(cls, kwargs: Mapping, epoch_length: Any) -> dict:
        """Return ``kwargs`` with its epoch counts turned into iteration counts."""
        name = cls.__name__
        if not cls._iter_convertible:
            raise ConfigError(
                f"{name} only runs per epoch and cannot be converted; remove "
                "convert_to_iter_based",
                key="convert_to_iter_based",
            )
        if not kwargs.get("by_epoch", True):
            raise ConfigError(
                f"{name} has convert_to_iter_based=True and by_epoch=False; the conversion "
                "turns an epoch-based schedule into an iteration-based one, so either set "
                "by_epoch=True (and give begin/end in epochs) or remove convert_to_iter_based",
                key="convert_to_iter_based",
            )
        if isinstance(epoch_length, bool) or not isinstance(epoch_length, int) or epoch_length <= 0:
            raise ConfigError(
                f"{name} has convert_to_iter_based=True but epoch_length={epoch_length!r}; it "
                "needs the number of iterations per epoch as a positive int (the runner passes "
                "len(train_dataloader))",
                key="epoch_length",
            )
        converted = dict(kwargs)
        converted["by_epoch"] = False
        converted["begin"] = _scale(converted.get("begin", 0), epoch_length, exact=False)
        end = converted.get("end", INF)
        if end != INF and end != math.inf:
            converted["end"] = _scale(end, epoch_length, exact=False)
        for key in cls._epoch_step_args + cls._epoch_span_args:
            value = converted.get(key)
            if value is None:
                continue
            exact = key in cls._epoch_span_args
            if isinstance(value, (list, tuple)):
                converted[key] = [_scale(v, epoch_length, exact) for v in value]
            else:
                converted[key] = _scale(value, epoch_length, exact)
        return converted

    # ------------------------------------------------------------------ validation helpers
    @classmethod
    def _error(cls, key: str | None, problem: str) -> ConfigError:
        return ConfigError(f"{cls.__name__} {problem}", key=key)

    @classmethod
    def _check_range(cls, begin: Any, end: Any) -> tuple[int, int]:
        begin = cls._whole_steps("begin", begin)
        end = cls._whole_steps("end", end)
        if begin < 0:
            raise cls._error("begin", f"got begin={begin}; it must be >= 0")
        if end <= begin:
            raise cls._error(
                "end",
                f"got begin={begin} and end={end}; the active range is [begin, end), so end "
                "must be larger than begin",
            )
        return begin, end

    @classmethod
    def _whole_steps(cls, key: str, value: Any) -> int:
        """``value`` as an int number of steps; ``math.inf`` means :data:`INF`."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise cls._error(key, f"got {key}={value!r}; it must be a whole number of steps")
        if isinstance(value, float):
            if value == math.inf:
                return INF
            if not value.is_integer():
                raise cls._error(
                    key,
                    f"got {key}={value!r}, a fractional number of steps; fractional epochs "
                    "need by_epoch=True with convert_to_iter_based=True",
                )
            return int(value)
        return value

    def _check_param_name(self, groups: list, param_name: Any) -> None:
        if not isinstance(param_name, str):
            raise self._error("param_name", f"got param_name={param_name!r}; it must be a str")
        missing = [i for i, group in enumerate(groups) if param_name not in group]
        if not missing:
            return
        keys = [key for key in groups[missing[0]] if key != "params" and isinstance(key, str)]
        where = "the optimizer's param groups" if len(missing) == len(groups) else (
            f"param groups {missing}"
        )
        raise self._error(
            "param_name",
            f"schedules '{param_name}', which {where} do not have; the keys they have are "
            f"{quoted_list(keys)}.{did_you_mean(param_name, keys)}",
        )


def _checked_param_groups(name: str, optimizer: Any) -> list:
    groups = getattr(optimizer, "param_groups", None)
    if isinstance(groups, Mapping):
        raise TypeError(
            f"{name} schedules one optimizer, but got {type(optimizer).__name__} holding "
            f"several ({quoted_list(groups)}); build one scheduler per optimizer, e.g. with "
            "build_param_schedulers(cfg, optim_wrapper_dict)"
        )
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        raise TypeError(
            f"{name} needs a torch optimizer or an optimizer wrapper (an object with a "
            f"param_groups list of dicts), got {type(optimizer).__name__}"
        )
    if not groups:
        raise TypeError(f"{name} got an optimizer without param groups")
    return groups


def _write_betas(groups: list[dict]) -> None:
    # torch's Adam-style optimizers read momentum from betas[0]; a tuple cannot be changed
    # in place, so each group gets a new one.
    for group in groups:
        group["betas"] = (group["momentum"], group["betas"][1])


def _scale(value: Any, epoch_length: int, exact: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value  # not a number: the constructor reports it
    scaled = value * epoch_length
    if isinstance(scaled, float):
        if scaled.is_integer():
            return int(scaled)
        if not exact:
            # The reference keeps such a product as a float, which never equals an integer
            # step (a milestone that never fires); round down like begin and end instead.
            return int(scaled)
    return scaled
