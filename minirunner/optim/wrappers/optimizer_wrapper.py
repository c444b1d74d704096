"""`OptimWrapper`: one object for backward, gradient accumulation, clipping and stepping."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from minirunner.logging import print_log
from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError

from ..nonfinite import NonFiniteGuard
from ..scheduler.step_order import WRAPPER_ATTR
from .grad_clip import GradClipper

_NO_KWARGS: dict[str, Any] = {}  # shared, never written to: avoids a dict per iteration
_NO_CONTEXT = nullcontext()  # reusable, so one instance serves every iteration
_STEP_METHODS = ("scale_loss", "backward", "should_update", "step", "zero_grad")
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@OPTIM_WRAPPERS.register_module()
class OptimWrapper:
    """Wrap a torch optimizer with gradient accumulation and gradient clipping.

    A training step is ``optim_wrapper.update_params(loss)``: scale the loss for
    accumulation, backward, and, on iterations that end an accumulation window, clip,
    step and zero the gradients. Subclasses (mixed precision) change only
    :meth:`backward`, :meth:`step` and :meth:`optim_context`.

    Args:
        optimizer: the torch optimizer to drive.
        accumulative_counts: accumulate gradients over this many iterations before each
            step. The loss of each iteration is divided by it, so that the summed gradient
            is the mean over the window (the last window of a run may be shorter; see
            :meth:`scale_loss`).
        clip_grad: clip gradients before each step. ``dict(max_norm=35, norm_type=2)``
            clips by total norm (``type='norm'``); ``dict(type='value', clip_value=0.5)``
            or ``dict(clip_value=0.5)`` clips each element. The dict is not modified.
        nonfinite: what to do when a loss turns NaN or infinite: ``dict(action='raise')``
            (the default, also None: the run stops at the next log line or checkpoint save,
            naming the first bad iteration, at no cost per iteration),
            ``dict(action='skip', max_consecutive=10)`` (check every step, one host sync
            each: skip a step whose loss or clipped gradient norm is not finite and drop its
            gradients) or ``'off'``. See :mod:`minirunner.optim.nonfinite`.

    Attributes:
        grad_norm: the total gradient norm before clipping, as a 0-dim tensor, from the
            last iteration that stepped with clipping by norm (None before that). It stays
            on the device; convert it (``float(wrapper.grad_norm)``) only when you log.
        nonfinite: the :class:`~minirunner.optim.nonfinite.NonFiniteGuard` built from
            ``nonfinite`` (its ``skipped`` counts the steps skipped).
        base_param_settings: when the optimizer has several param groups, a group-like
            dict holding the optimizer's default hyper-parameters. It is listed last in
            :attr:`param_groups`, so schedulers update it too and ``get_lr()['base_lr']``
            shows the schedule itself. None with a single param group.

    Example:
        >>> model = nn.Linear(1, 1)
        >>> wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
        >>> loss = model(torch.ones(1, 1)).sum()
        >>> wrapper.update_params(loss)
        >>> wrapper.get_lr()
        {'lr': [0.01]}
    """

    # True while a class keeps the base scale_loss/backward/should_update/step/zero_grad;
    # update_params then runs them inline (set for every subclass in __init_subclass__).
    _own_steps: bool = True
    # The model class optim_context last saw and whether it has no_sync (set per instance).
    _no_sync_class: type | None = None
    _class_has_no_sync: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_steps = all(getattr(cls, name) is getattr(OptimWrapper, name) for name in _STEP_METHODS)

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accumulative_counts: int = 1,
        clip_grad: Mapping[str, Any] | None = None,
        nonfinite: Mapping[str, Any] | str | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            hint = (
                " To build it from a config, use build_optim_wrapper(model, "
                "dict(optimizer=dict(type='SGD', lr=0.01)))."
                if isinstance(optimizer, Mapping) else ""
            )
            raise ConfigError(
                f"expected a torch.optim.Optimizer instance, got {type(optimizer).__name__}."
                + hint,
                key="optimizer",
            )
        if isinstance(accumulative_counts, bool) or not isinstance(accumulative_counts, int) \
                or accumulative_counts < 1:
            raise ConfigError(
                f"must be an integer >= 1 (1 means no accumulation), got {accumulative_counts!r}",
                key="accumulative_counts",
            )
        self.optimizer = optimizer
        self.clipper: GradClipper | None = None if clip_grad is None else GradClipper(clip_grad)
        self.grad_norm: torch.Tensor | None = None
        self.nonfinite = NonFiniteGuard.from_cfg(nonfinite)
        # Only 'skip' acts inside the step; it leaves the inline path (which has no check).
        self._skip_guard: NonFiniteGuard | None = None
        if self.nonfinite.action == "skip":
            self._skip_guard = self.nonfinite
            self._own_steps = False

        self._accumulative_counts = accumulative_counts
        self._inner_count = 0
        # -1 until initialize_count_status is called: every window then has the full length.
        self._max_counts = -1
        self._remainder_counts = 0
        self._full_windows_end = -1

        self.base_param_settings: dict[str, Any] | None = None
        if len(optimizer.param_groups) > 1:
            self.base_param_settings = {"params": [], **optimizer.defaults}

        #: Iterations whose update was skipped on purpose without a backward (see
        #: :meth:`record_skipped_update`).
        self.skipped_updates = 0
        # Schedulers built on the bare optimizer find the wrapper through this (weakly: the
        # optimizer must not keep a dropped wrapper alive), so that steps this wrapper holds
        # back for accumulation do not look like a wrong call order to them.
        optimizer.__dict__[WRAPPER_ATTR] = weakref.ref(self)

    # ------------------------------------------------------------------ the training step
    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: dict[str, Any] | None = None,
        zero_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Scale ``loss``, backward, and step then zero the gradients when a window ends.

        Args:
            loss: the scalar loss of this iteration (it must require grad).
            step_kwargs: keyword arguments for :meth:`step`.
            zero_kwargs: keyword arguments for :meth:`zero_grad`.
        """
        try:
            if self._own_steps:
                # scale_loss, backward, should_update, step and zero_grad of this class,
                # written out in this frame: on a small model the five calls (or one more
                # frame) cost a measurable part of an iteration. Keep in step with those
                # methods; a subclass that overrides any of them does not come here.
                if self._accumulative_counts != 1:
                    loss = self.scale_loss(loss)
                loss.backward()
                count = self._inner_count = self._inner_count + 1
                if count % self._accumulative_counts == 0 or count == self._max_counts:
                    if self.clipper is not None:
                        self._clip_grad()
                    self.optimizer.step(**(step_kwargs or _NO_KWARGS))
                    self.optimizer.zero_grad(**(zero_kwargs or _NO_KWARGS))
                return
            if self._skip_guard is not None:
                self._skip_guard.watch(loss)
            self.backward(self.scale_loss(loss))
        except (RuntimeError, AttributeError, TypeError) as error:
            # Checked only on failure: the check costs time on every iteration otherwise.
            if getattr(loss, "requires_grad", False):
                raise
            raise ValueError(
                "update_params(loss): the loss does not require grad "
                f"({_describe_loss(loss)}), so there is nothing to back-propagate. Compute "
                "it from the model's output outside torch.no_grad()/torch.inference_mode(), "
                "and make sure the model has parameters with requires_grad=True."
            ) from error
        if self.should_update():
            self.step(**(step_kwargs or _NO_KWARGS))
            self.zero_grad(**(zero_kwargs or _NO_KWARGS))

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """Divide ``loss`` by the length of the accumulation window it belongs to.

        The factor is ``accumulative_counts`` except in the last window of a run that
        :meth:`initialize_count_status` announced, which may be shorter
        (``max_counts % accumulative_counts`` iterations).
        """
        counts = self._accumulative_counts
        if counts == 1:
            return loss
        if self._max_counts < 0 or self._inner_count < self._full_windows_end:
            return loss / counts
        return loss / (self._remainder_counts or counts)

    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Back-propagate ``loss`` (``kwargs`` go to ``loss.backward``) and count the iteration."""
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs: Any) -> None:
        """Clip the gradients if configured, then call ``optimizer.step(**kwargs)``.

        With ``nonfinite=dict(action='skip')`` the step is skipped when the window's loss
        or the gradient norm clipping computed is not finite (:meth:`zero_grad` then drops
        the gradients).
        """
        norm_before = self.grad_norm
        if self.clipper is not None:
            self._clip_grad()
        if self._skip_guard is not None:
            fresh_norm = self.grad_norm if self.grad_norm is not norm_before else None
            if self._skip_guard.skips_step(self._inner_count, fresh_norm):
                return
        self.optimizer.step(**kwargs)

    def zero_grad(self, **kwargs: Any) -> None:
        """Call ``optimizer.zero_grad(**kwargs)``."""
        self.optimizer.zero_grad(**kwargs)

    def record_skipped_update(self) -> None:
        """Note that this iteration's update was skipped on purpose, without a backward.

        Call it from code that decides not to run :meth:`update_params` for an iteration
        (e.g. a guard that drops a non-finite loss). It changes nothing in the training or
        the accumulation count; it only tells the parameter schedulers of this wrapper that
        the optimizer not having stepped yet is intended, so they do not warn that they
        step before the optimizer. Iterations that back-propagate need no call: steps held
        back for accumulation or skipped by an AMP loss scaler are counted already.
        """
        self.skipped_updates += 1

    # ------------------------------------------------------------------ clipping, as named
    # by the reference (it sets these attributes when clip_grad is given)
    @property
    def clip_grad_kwargs(self) -> dict[str, Any] | None:
        """The keyword arguments given to the clip function (``clip_grad`` without ``type``).

        None without clipping. It is the dict in use: changing it changes the clipping.

        Example:
            >>> w = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1),
            ...                  clip_grad=dict(type='norm', max_norm=1.0))
            >>> w.clip_grad_kwargs
            {'max_norm': 1.0}
        """
        return None if self.clipper is None else self.clipper.kwargs

    @property
    def clip_func(self) -> Any:
        """``torch.nn.utils.clip_grad_norm_`` or ``clip_grad_value_``; None without clipping."""
        return None if self.clipper is None else self.clipper.func

    @property
    def grad_name(self) -> str | None:
        """``'grad_norm'`` or ``'grad_value'`` (the kind of clipping); None without clipping."""
        return None if self.clipper is None else f"grad_{self.clipper.kind}"

    def _clip_grad(self) -> None:
        params = [
            param
            for group in self.optimizer.param_groups
            for param in group["params"]
            if param.grad is not None
        ]
        if not params:
            return
        norm = self.clipper(params)
        if norm is not None:
            self.grad_norm = norm

    # ------------------------------------------------------------------ accumulation
    def optim_context(self, model: nn.Module) -> AbstractContextManager:
        """Return the context to run the forward pass of ``model`` in.

        On iterations that will not step, it is ``model.no_sync()`` (when the model has
        it, as DistributedDataParallel does), so gradients are all-reduced only once per
        accumulation window; otherwise a context that does nothing. Call
        :meth:`update_params` after leaving the context.

        Example:
            >>> model = nn.Linear(1, 1)
            >>> wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
            >>> with wrapper.optim_context(model):
            ...     loss = model(torch.ones(1, 1)).sum()
            >>> wrapper.update_params(loss)
        """
        # A plain object, not a generator-based context: this runs every iteration and a
        # shared nullcontext costs a fraction of a @contextmanager's enter and exit.
        # The class is asked, not the instance: a module without the attribute would raise
        # (and format) an AttributeError inside nn.Module.__getattr__ on every such iteration.
        # no_sync matters only when accumulating, for a model class that has it (DDP): the
        # class is looked up once, as a miss there raises and clears an AttributeError.
        if self._accumulative_counts == 1:
            return _NO_CONTEXT
        cls = type(model)
        if cls is not self._no_sync_class:
            self._no_sync_class, self._class_has_no_sync = cls, hasattr(cls, "no_sync")
        if self._class_has_no_sync and not self.should_sync():
            return model.no_sync()
        return _NO_CONTEXT

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Tell the wrapper where the run starts and how many iterations it has in total.

        The runner calls this before training with the current and the maximum iteration
        (of the whole run, across epochs), so that the last, possibly shorter, window
        divides the loss by its own length and still steps at the end.

        Args:
            model: the model being trained (checked for BatchNorm, which sees smaller
                batches under accumulation).
            init_counts: iterations already done (non-zero when resuming).
            max_counts: iterations in the whole run.
        """
        for name, value in (("init_counts", init_counts), ("max_counts", max_counts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"initialize_count_status: {name} must be a non-negative int, got {value!r}"
                )
        if init_counts > max_counts:
            raise ValueError(
                f"initialize_count_status: init_counts ({init_counts}) is larger than "
                f"max_counts ({max_counts}); pass the iteration to start from and the "
                "total number of iterations of the run"
            )
        counts = self._accumulative_counts
        self._inner_count = init_counts
        self.nonfinite.start_at(init_counts)
        self._max_counts = max_counts
        self._remainder_counts = max_counts % counts
        self._full_windows_end = max_counts - self._remainder_counts
        # A checkpoint taken inside a window restores its gradients before this call; only
        # without them is the window's first part lost.
        if init_counts % counts != 0 and all(p.grad is None for p in model.parameters()):
            print_log(
                f"Resuming at iteration {init_counts}, which is inside an accumulation "
                f"window of {counts} iterations, without the gradients accumulated before "
                "it: the first step uses fewer micro-batches.",
                logger="current",
                level=logging.WARNING,
            )
        if counts > 1 and any(isinstance(m, _BATCH_NORMS) for m in model.modules()):
            print_log(
                "The model has BatchNorm layers: with gradient accumulation they normalise "
                "over each micro-batch, not the accumulated batch, which may lower accuracy "
                "slightly.",
                logger="current",
                level=logging.WARNING,
            )

    def should_update(self) -> bool:
        """True when the iteration just back-propagated ends a window (step now)."""
        return (
            self._inner_count % self._accumulative_counts == 0
            or self._inner_count == self._max_counts
        )

    def should_sync(self) -> bool:
        """True when the coming iteration will step, so its gradients must be all-reduced."""
        following = self._inner_count + 1
        return following % self._accumulative_counts == 0 or following == self._max_counts

    @property
    def inner_count(self) -> int:
        """Iterations back-propagated so far (including ``init_counts``)."""
        return self._inner_count

    @property
    def accumulative_counts(self) -> int:
        """The length of a full accumulation window."""
        return self._accumulative_counts

    @property
    def max_counts(self) -> int:
        """The run's total iterations, or -1 before :meth:`initialize_count_status`."""
        return self._max_counts

    # ------------------------------------------------------------------ hyper-parameters
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's param groups, followed by :attr:`base_param_settings` if any."""
        if self.base_param_settings is None:
            return self.optimizer.param_groups
        return self.optimizer.param_groups + [self.base_param_settings]

    @property
    def defaults(self) -> dict[str, Any]:
        """The optimizer's default hyper-parameters."""
        return self.optimizer.defaults

    def get_lr(self) -> dict[str, list[float]]:
        """Return ``{'lr': [lr of each group]}``, plus ``'base_lr'`` with several groups.

        Example:
            >>> wrapper = OptimWrapper(torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))
            >>> wrapper.get_lr()
            {'lr': [0.1]}
        """
        result = {"lr": [group["lr"] for group in self.optimizer.param_groups]}
        if self.base_param_settings is not None:
            result["base_lr"] = [self.base_param_settings["lr"]]
        return result

    def get_momentum(self) -> dict[str, list[float]]:
        """Return ``{'momentum': [...]}``: each group's ``momentum``, else ``betas[0]``, else 0.

        Example:
            >>> params = nn.Linear(1, 1).parameters()
            >>> OptimWrapper(torch.optim.Adam(params, betas=(0.8, 0.99))).get_momentum()
            {'momentum': [0.8]}
        """
        momentum = []
        for group in self.optimizer.param_groups:
            if "momentum" in group:
                momentum.append(group["momentum"])
            elif "betas" in group:
                momentum.append(group["betas"][0])
            else:
                momentum.append(0)
        return {"momentum": momentum}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state dict, plus ``base_param_settings`` with several groups."""
        state = self.optimizer.state_dict()
        if self.base_param_settings is not None:
            state["base_param_settings"] = {
                key: value for key, value in self.base_param_settings.items() if key != "params"
            }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state saved by :meth:`state_dict` (``state_dict`` itself is not changed).

        Raises:
            ConfigError: if ``state_dict`` is not an optimizer state or was saved for
                differently grouped parameters.
        """
        check_optimizer_state(state_dict, self.optimizer)
        state = dict(state_dict)
        base = state.pop("base_param_settings", None)
        if base is not None and self.base_param_settings is not None:
            # Updated in place: schedulers may hold a reference to this dict.
            self.base_param_settings.update(base)
        self.optimizer.load_state_dict(state)

    def __repr__(self) -> str:
        optimizer = repr(self.optimizer).replace("\n", "\n  ")
        return (
            f"{type(self).__name__}(accumulative_counts={self._accumulative_counts}, "
            f"clip_grad={self.clipper!r}{self._extra_repr()},\n  optimizer={optimizer})"
        )

    def _extra_repr(self) -> str:
        return ""


def check_optimizer_state(state_dict: Any, optimizer: torch.optim.Optimizer) -> None:
    """Raise a ConfigError unless ``state_dict`` fits ``optimizer``'s param groups."""
    if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict \
            or "state" not in state_dict:
        keys = list(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
        raise ConfigError(
            f"expected an optimizer state dict with 'state' and 'param_groups', got {keys}. "
            "If this is a whole checkpoint, pass checkpoint['optimizer'].",
            key="state_dict",
        )
    saved = [len(group["params"]) for group in state_dict["param_groups"]]
    ours = [len(group["params"]) for group in optimizer.param_groups]
    if saved != ours:
        raise ConfigError(
            f"the saved optimizer state has {len(saved)} param group(s) of sizes {saved}, "
            f"but this optimizer has {len(ours)} of sizes {ours}. It was saved for another "
            "model or another paramwise_cfg: resume with the same config, or load only the "
            "model weights (load_from without resume).",
            key="state_dict",
        )


def _describe_loss(loss: Any) -> str:
    if not isinstance(loss, torch.Tensor):
        return f"got {type(loss).__name__} {loss!r}, not a tensor"
    if torch.is_inference_mode_enabled() or loss.is_inference():
        return "an inference-mode tensor"
    if not torch.is_grad_enabled():
        return "gradients are disabled here (inside torch.no_grad())"
    return "requires_grad=False, no grad_fn"
