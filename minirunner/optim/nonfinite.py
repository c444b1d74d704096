"""What training does when a loss turns NaN or infinite: the ``nonfinite`` setting of an
optimizer wrapper (``optim_wrapper=dict(..., nonfinite=dict(action='skip'))``).

Two mechanisms, one per action:

- ``'raise'`` (the default) adds no work per iteration. The losses of every iteration are
  in the message hub anyway (as tensors, converted when the logger reads them); this module
  scans the values that arrived since its last look, at each log line and before each
  checkpoint save, and stops the run naming the first iteration whose loss was not finite.
  Detection may come a few iterations late; no checkpoint of the broken weights is written.
- ``'skip'`` checks the loss (and the gradient norm, when clipping by norm computes it) at
  every optimizer step, one host sync per step: a bad window's gradients are dropped and
  its step is skipped on every rank alike.

``'off'`` does neither. The hub check lives here, not in the runner, because the logger hook
(one layer below the runner) calls it too; it takes the runner only as a duck-typed object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import torch

from minirunner import dist
from minirunner.logging import print_log
from minirunner.utils import ConfigError, did_you_mean, quoted_list

ACTIONS = ("raise", "skip", "off")
DEFAULT_MAX_CONSECUTIVE = 10
_KEYS = ("action", "max_consecutive")
_EXAMPLE = "nonfinite=dict(action='skip', max_consecutive=10)"
_NONE = 2**62  # "no bad iteration", larger than any iteration


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss (or the gradient norm) was NaN or infinite.

    ``tools/train.py`` prints its message as one line and exits with status 1.

    Attributes:
        iteration: the first bad iteration, counted from 1 as the log lines count.
        terms: the loss terms that were not finite there, name -> value (may be empty when
            the wrapper saw only the total loss).
    """

    def __init__(self, message: str, iteration: int, terms: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.iteration = iteration
        self.terms = dict(terms or {})


class NonFiniteGuard:
    """An optimizer wrapper's ``nonfinite`` setting and what it has seen so far.

    Args:
        action: ``'raise'`` (stop the run, the default), ``'skip'`` (skip the optimizer
            step of a window whose loss or gradient norm is not finite) or ``'off'``.
        max_consecutive: with ``'skip'``, how many steps in a row may be skipped; one more
            non-finite step in a row raises :class:`NonFiniteLossError`.

    Attributes:
        skipped: steps skipped so far (``'skip'``).
        consecutive: steps skipped in a row up to the latest step (``'skip'``).

    Example:
        >>> NonFiniteGuard.from_cfg(dict(action='skip', max_consecutive=3)).action
        'skip'
    """

    def __init__(self, action: str = "raise", max_consecutive: int = DEFAULT_MAX_CONSECUTIVE) -> None:
        if action not in ACTIONS:
            hint = did_you_mean(action, ACTIONS) if isinstance(action, str) else ""
            raise ConfigError(
                f"unknown action {action!r}.{hint} Use one of {quoted_list(ACTIONS)}, e.g. {_EXAMPLE}",
                key="nonfinite.action",
            )
        if isinstance(max_consecutive, bool) or not isinstance(max_consecutive, int) or max_consecutive < 0:
            raise ConfigError(
                f"must be an int >= 0 (the most optimizer steps skipped in a row before the run stops), "
                f"got {max_consecutive!r}; e.g. {_EXAMPLE}",
                key="nonfinite.max_consecutive",
            )
        self.action = action
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        # 'skip': the iterations this guard saw, the current window's summed loss and
        # length, and the count up to which iteration schedulers and EMA hold.
        self._seen = 0
        self._window_loss: torch.Tensor | None = None
        self._window_length = 0
        self._hold_until = 0
        # 'raise': the newest iteration (0-based) whose logged losses were found finite.
        self._checked_through = -1

    @classmethod
    def from_cfg(cls, cfg: Any) -> "NonFiniteGuard":
        """Build from the ``nonfinite`` config value: None (the default, ``'raise'``), an
        action name, or a dict with ``action`` and ``max_consecutive``."""
        if cfg is None:
            return cls()
        if isinstance(cfg, str):
            return cls(action=cfg)
        if not isinstance(cfg, Mapping):
            raise ConfigError(
                f"expected a dict such as {_EXAMPLE} or an action name, got {type(cfg).__name__} {cfg!r}",
                key="nonfinite",
            )
        for key in cfg:
            if key not in _KEYS:
                raise ConfigError(
                    f"unknown key.{did_you_mean(str(key), _KEYS)} Accepted: {quoted_list(_KEYS)}",
                    key=f"nonfinite.{key}",
                )
        return cls(**cfg)

    def start_at(self, iteration: int) -> None:
        """Training starts (or resumes) at 0-based ``iteration``: the losses of earlier
        iterations, restored with the message hub, are not this run's to check."""
        self._checked_through = iteration - 1

    # ------------------------------------------------------------------ 'skip'
    def watch(self, loss: torch.Tensor) -> None:
        """Note this iteration's (unscaled) loss; called before its backward."""
        loss = loss.detach()
        self._window_loss = loss if self._window_loss is None else self._window_loss + loss
        self._window_length += 1
        self._seen += 1

    def skips_step(self, iteration: int, grad_norm: torch.Tensor | None) -> bool:
        """At an optimizer step: True when it must be skipped (its gradients dropped).

        The window's summed loss is non-finite when any of its losses is; ``grad_norm`` is
        the norm clipping just computed, or None. Every rank reaches the same answer (one
        all-reduce of the flag); this is the one host sync per step that ``'skip'`` costs.

        Raises:
            NonFiniteLossError: when this would be skip number ``max_consecutive + 1`` in a row.
        """
        window_loss, length = self._window_loss, self._window_length
        self._window_loss, self._window_length = None, 0
        if window_loss is None:  # a step without a watched loss (update_params not used)
            return False
        bad = ~torch.isfinite(window_loss.float())
        if grad_norm is not None:
            bad = bad | ~torch.isfinite(grad_norm)
        flag = bad.to(torch.int32).reshape(1)
        if dist.is_distributed():
            dist.all_reduce(flag)
        if not flag.item():
            self.consecutive = 0
            return False
        self.skipped += 1
        self.consecutive += 1
        first = iteration - length + 1
        where = f"iteration {iteration}" if length == 1 else f"iterations {first}-{iteration}"
        what = f"loss {float(window_loss):g}"
        if grad_norm is not None:
            what += f", grad_norm {float(grad_norm):g}"
        if self.consecutive > self.max_consecutive:
            raise NonFiniteLossError(
                f"non-finite loss or gradient norm at iteration {iteration} ({what} on this rank): "
                f"{self.consecutive} optimizer steps in a row were not finite, more than "
                f"optim_wrapper.nonfinite.max_consecutive={self.max_consecutive}; training stopped. "
                "Lower the learning rate, clip gradients (optim_wrapper.clip_grad) or check the data",
                iteration,
            )
        # Iteration schedulers and EMA hold for as many iterations as the window had, so
        # that over the steps actually taken they follow the curve they would have without it.
        self._hold_until = self._seen + length
        print_log(
            f"nonfinite: {what} at {where}; skipped the optimizer step and dropped the gradients "
            f"({self.skipped} skipped so far, {self.consecutive} in a row)",
            logger="current",
            level=logging.WARNING,
        )
        return True

    def holding(self) -> bool:
        """True while iteration schedulers and EMA should stay put after a skipped step."""
        return self._seen < self._hold_until


def guards_of(optim_wrapper: Any) -> list[NonFiniteGuard]:
    """The guards of a built optim wrapper (one per wrapper of an ``OptimWrapperDict``);
    empty for a config dict, None, or a wrapper class without one."""
    if optim_wrapper is None or isinstance(optim_wrapper, dict):  # not built yet: a config
        return []
    wrappers = optim_wrapper.values() if hasattr(optim_wrapper, "values") else [optim_wrapper]
    return [guard for guard in (getattr(w, "nonfinite", None) for w in wrappers) if isinstance(guard, NonFiniteGuard)]


def skip_guards(optim_wrapper: Any) -> list[NonFiniteGuard]:
    """The guards in ``'skip'`` mode: hooks that hold on skipped steps look only at these."""
    return [guard for guard in guards_of(optim_wrapper) if guard.action == "skip"]


# ---------------------------------------------------------------------- 'raise'
def check_logged_losses(runner: Any) -> None:
    """Raise :class:`NonFiniteLossError` if a loss logged since the last check is not finite.

    Reads the ``train/*loss*`` histories of ``runner.message_hub`` (one value per
    iteration): at a log line they were just converted to numbers by the logger, before a
    checkpoint save the conversion here is the one sync. Each call looks only at the values
    that arrived since the previous one. Does nothing unless every optimizer wrapper's
    ``nonfinite`` action is ``'raise'``. Under torchrun every rank must call it at the same
    point (the logger and checkpoint saves do); all ranks then raise together.
    """
    guards = guards_of(getattr(runner, "optim_wrapper", None))
    if not guards or any(guard.action != "raise" for guard in guards):
        return
    guard = guards[0]
    hub = runner.message_hub
    newest = hub.get_info("iter")
    if newest is None:
        return
    first, terms = _first_nonfinite(hub, newest, guard._checked_through)
    if dist.is_distributed():
        first, terms = _agree(first, terms)
    if first == _NONE:
        guard._checked_through = newest
        return
    raise NonFiniteLossError(_message(runner, first, terms), first + 1, terms)


def _first_nonfinite(hub: Any, newest: int, checked_through: int) -> tuple[int, dict[str, float]]:
    """The first 0-based iteration after ``checked_through`` with a non-finite loss term, and
    those terms; ``(_NONE, {})`` when all are finite. The newest value of each history
    belongs to iteration ``newest``."""
    first, terms = _NONE, {}
    for key, buffer in hub.log_scalars.items():
        if not key.startswith("train/") or "loss" not in key:
            continue
        values = buffer.data[0]
        fresh = min(len(values), newest - checked_through)
        if fresh <= 0:
            continue
        tail = values[-fresh:]
        if math.isfinite(sum(tail)):  # the usual case: no value to look at one by one
            continue
        for offset, value in enumerate(tail):
            if not math.isfinite(value):
                iteration = newest - fresh + 1 + offset
                if iteration < first:
                    first, terms = iteration, {}
                if iteration == first:
                    terms[key[len("train/"):]] = value
                break
    return first, terms


def _agree(first: int, terms: dict[str, float]) -> tuple[int, dict[str, float]]:
    """Every rank's finding, combined: the earliest bad iteration of any rank and its terms."""
    device = torch.device("cpu")
    if torch.distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    any_bad = dist.all_reduce(torch.tensor([int(first != _NONE)], device=device)).item()
    if not any_bad:
        return _NONE, {}
    return min(dist.all_gather_object((first, terms)), key=lambda found: found[0])


def _message(runner: Any, first: int, terms: dict[str, float]) -> str:
    position = ""
    try:
        length = len(runner.train_dataloader)
    except TypeError:
        length = 0
    if length:
        position = f" (epoch {first // length + 1}, batch {first % length + 1} of {length})"
    listed = ", ".join(f"{name}={value}" for name, value in terms.items())
    return (
        f"non-finite loss at iteration {first + 1}{position}: {listed}; training stopped, and no "
        "checkpoint was saved after it. Lower the learning rate, clip gradients "
        "(optim_wrapper.clip_grad) or check the data for NaN/Inf; "
        "optim_wrapper.nonfinite=dict(action='skip') skips such steps instead"
    )
