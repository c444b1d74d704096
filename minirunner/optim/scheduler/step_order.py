"""Warn when a scheduler steps before its optimizer, at no cost per iteration.

PyTorch and the reference engine warn when ``scheduler.step()`` runs before the first
``optimizer.step()``: the first value of the schedule is then skipped. Both find out by
replacing ``optimizer.step`` for good with a wrapper that counts calls, a Python call on every
step of the run. Here the replacement is a :class:`StepProbe` that removes itself on its
first call, so every later step costs what it cost before, and a scheduler looks at what the
probe saw only once, in its second ``step()`` (the first after its constructor's).

Steps that an optimizer wrapper decides not to take are not mistakes: an accumulation window
that has not ended, an AMP loss scaler that skips inf/NaN gradients, or a guard that skips a
non-finite loss. The wrapper already counts the iterations it sees (``inner_count``, moved by
every backward) and the updates it was told were skipped (``skipped_updates``); a scheduler
whose wrapper saw any iteration since the scheduler was built does not warn.
"""

from __future__ import annotations

import inspect
import warnings
import weakref
from typing import Any

import torch

#: The attribute of a torch optimizer that holds its current probe.
PROBE_ATTR = "_minirunner_step_probe"
#: The attribute of a torch optimizer that holds a weak reference to its OptimWrapper.
WRAPPER_ATTR = "_minirunner_optim_wrapper"


class StepProbe:
    """Stands in for ``optimizer.step`` until the first call, then puts back what was there.

    It looks like a bound method (``__self__``, ``__func__``) so that code which wraps
    ``optimizer.step`` in its turn, as torch's own LR schedulers do, keeps working; it holds
    the optimizer only weakly, so the optimizer is freed as soon as nothing else uses it.

    Attributes:
        stepped: whether the optimizer's step ran through this probe.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, previous: Any) -> None:
        self._optimizer_ref = weakref.ref(optimizer)
        # An instance attribute that was already there (another library's wrapper), or None
        # for the class's own step.
        self._previous = previous
        self.stepped = False

    @property
    def __self__(self) -> torch.optim.Optimizer | None:  # noqa: D401 - mimics a bound method
        return self._optimizer_ref()

    @property
    def __func__(self) -> Any:
        # A function of (optimizer, *args): a wrapper that binds it to the optimizer, as
        # ``step.__func__.__get__(optimizer)(...)`` does, ends up in __call__.
        probe = self

        def step(optimizer: Any, *args: Any, **kwargs: Any) -> Any:
            return probe(*args, **kwargs)

        return step

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        optimizer = self._optimizer_ref()
        if optimizer is None:
            raise ReferenceError("the optimizer of this step was garbage-collected")
        self.stepped = True
        attributes = optimizer.__dict__
        if attributes.get("step") is self:  # still installed: uninstall, later steps go direct
            if self._previous is None:
                del attributes["step"]
            else:
                attributes["step"] = self._previous
        if self._previous is not None:
            return self._previous(*args, **kwargs)
        return type(optimizer).step(optimizer, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<step probe of {type(self.__self__).__name__}, stepped={self.stepped}>"


def torch_optimizer_of(optimizer: Any) -> torch.optim.Optimizer | None:
    """The torch optimizer behind ``optimizer`` (itself, or a wrapper's ``.optimizer``).

    Looked up statically: an object that computes attributes in ``__getattr__`` is not asked.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer
    inner = inspect.getattr_static(optimizer, "optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else None


def wrapper_of(optimizer: Any) -> Any:
    """The optimizer wrapper that drives ``optimizer`` (itself when it is one), or None."""
    if not isinstance(optimizer, torch.optim.Optimizer) and \
            inspect.getattr_static(optimizer, "inner_count", None) is not None:
        return optimizer
    torch_optimizer = torch_optimizer_of(optimizer)
    ref = torch_optimizer.__dict__.get(WRAPPER_ATTR) if torch_optimizer is not None else None
    return ref() if isinstance(ref, weakref.ref) else None


def iterations_seen(wrapper: Any) -> int:
    """Iterations a wrapper handled: back-propagated (stepped or not) or skipped on purpose."""
    if wrapper is None:
        return -1
    return int(getattr(wrapper, "inner_count", 0)) + int(getattr(wrapper, "skipped_updates", 0))


class StepWatch:
    """What a scheduler needs to check, once, that its optimizer stepped first.

    Built by the scheduler's constructor, which installs a fresh probe on the optimizer (as
    in the reference engine, building a scheduler restarts the watch for all schedulers of
    that optimizer) and notes how many iterations the optimizer's wrapper has seen. It holds
    the optimizer and the wrapper weakly and is not part of the scheduler's state dict.
    """

    __slots__ = ("_optimizer_ref", "_wrapper_ref", "_seen_at_start")

    def __init__(self, optimizer: Any) -> None:
        torch_optimizer = torch_optimizer_of(optimizer)
        wrapper = wrapper_of(optimizer)
        self._optimizer_ref = None if torch_optimizer is None else weakref.ref(torch_optimizer)
        self._wrapper_ref = None if wrapper is None else weakref.ref(wrapper)
        self._seen_at_start = iterations_seen(wrapper)
        if torch_optimizer is not None:
            attributes = torch_optimizer.__dict__
            probe = attributes.get(PROBE_ATTR)
            if not (isinstance(probe, StepProbe) and attributes.get("step") is probe
                    and not probe.stepped):
                probe = StepProbe(torch_optimizer, attributes.get("step"))
                attributes["step"] = probe
                attributes[PROBE_ATTR] = probe

    def check(self, scheduler: Any) -> None:
        """Warn if ``scheduler`` steps before its optimizer did, or cannot tell.

        No warning when the optimizer stepped since the scheduler was built, or when its
        wrapper handled an iteration (a step it held back for accumulation or AMP, or an
        update skipped on purpose, is not a mistake).
        """
        wrapper = None if self._wrapper_ref is None else self._wrapper_ref()
        if wrapper is not None and iterations_seen(wrapper) != self._seen_at_start:
            return
        torch_optimizer = None if self._optimizer_ref is None else self._optimizer_ref()
        if torch_optimizer is None:
            return  # not a torch optimizer: nothing to go by
        probe = torch_optimizer.__dict__.get(PROBE_ATTR)
        if not isinstance(probe, StepProbe) or probe.stepped:
            return
        name = type(scheduler).__name__
        if torch_optimizer.__dict__.get("step") is not probe:
            warnings.warn(
                f"{name}: optimizer.step was replaced after the scheduler was built, so it "
                "cannot tell whether the optimizer steps before the scheduler does. Make sure "
                "optimizer.step() (or optim_wrapper.update_params(loss)) runs before "
                "scheduler.step() in each iteration, or the schedule's first value is skipped.",
                UserWarning,
                stacklevel=3,
            )
            return
        warnings.warn(
            f"{name}.step() ran before the optimizer's first step(). Call optimizer.step() "
            "(or optim_wrapper.update_params(loss)) first and scheduler.step() after it, as "
            "PyTorch 1.1 and later expect; in this order the schedule's first value is "
            "skipped. See https://pytorch.org/docs/stable/optim.html"
            "#how-to-adjust-learning-rate",
            UserWarning,
            stacklevel=3,
        )
