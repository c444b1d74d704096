"""`AmpOptimWrapper`: mixed-precision training with torch.autocast and a loss scaler."""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
from torch import nn

from minirunner.logging import print_log
from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .optimizer_wrapper import _NO_CONTEXT, OptimWrapper, check_optimizer_state

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
# torch.autocast only lowers precision; asking it for float32/float64 disables it with a
# warning on every entry, so for those dtypes the wrapper does not enter it at all.
_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(OptimWrapper):
    """An :class:`OptimWrapper` for automatic mixed precision, on CUDA and on CPU.

    :meth:`optim_context` runs the forward pass under ``torch.autocast`` on the model's
    device type. With float16, a ``torch.amp.GradScaler`` scales the loss so that small
    gradients survive, unscales the gradients before clipping, and skips steps whose
    gradients hold inf/NaN. bfloat16 has float32's range and never uses a scaler.

    Args:
        loss_scale: float16 only. ``'dynamic'`` (the default) adapts the scale; a number
            keeps a fixed scale; a dict gives ``torch.amp.GradScaler`` arguments, e.g.
            ``dict(init_scale=512.0, growth_interval=1000)``.
        dtype: ``'float16'``, ``'bfloat16'``, ``'float32'``, ``'float64'`` or a torch
            dtype. None picks float16 when the parameters are on CUDA and bfloat16
            otherwise. float32/float64 run the forward without autocast.
        use_fsdp: with float16, use torch's ``ShardedGradScaler``, which FSDP1
            (``FullyShardedDataParallel``) needs; as in the reference. Without effect for
            dtypes that use no scaler.
        **kwargs: :class:`OptimWrapper` arguments (``optimizer``, ``accumulative_counts``,
            ``clip_grad``).

    Attributes:
        cast_dtype: the autocast dtype in use.
        loss_scaler: the ``GradScaler``, or None when the dtype needs none.
        skipped_steps: how many steps the scaler skipped because of inf/NaN gradients.
        last_step_skipped: whether the most recent step was skipped.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> wrapper = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        >>> with wrapper.optim_context(model):  # CPU: bfloat16
        ...     out = model(torch.ones(4, 2))
        >>> out.dtype
        torch.bfloat16
        >>> wrapper.update_params(out.float().pow(2).mean())
    """

    def __init__(
        self,
        loss_scale: str | float | Mapping[str, Any] = "dynamic",
        dtype: str | torch.dtype | None = None,
        use_fsdp: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.use_fsdp = bool(use_fsdp)
        self._device_type = _device_type_of_optimizer(self.optimizer)
        self.cast_dtype: torch.dtype = _resolve_dtype(dtype, self._device_type)
        self._autocast = self.cast_dtype in _AUTOCAST_DTYPES
        self.skipped_steps = 0
        self.last_step_skipped = False
        self._loss_scale = loss_scale
        # Given to GradScaler.update after each step: a number pins the scale there.
        self._fixed_scale: float | None = None
        self.loss_scaler: Any = None
        if self.cast_dtype == torch.float16:
            self.loss_scaler = self._build_scaler(loss_scale)
            self._watch_optimizer_steps()
        else:
            _check_loss_scale(loss_scale)
            if loss_scale != "dynamic":
                print_log(
                    f"AmpOptimWrapper: loss_scale={loss_scale!r} is ignored with dtype "
                    f"{self.cast_dtype}, which needs no loss scaling.",
                    logger="current",
                    level=logging.WARNING,
                )

    def _build_scaler(self, loss_scale: Any) -> Any:
        _check_loss_scale(loss_scale)
        if loss_scale == "dynamic":
            scaler_args: dict[str, Any] = {}
        elif isinstance(loss_scale, Mapping):
            scaler_args = dict(loss_scale)
            accepted = _grad_scaler_arguments()
            for key in scaler_args:
                if key not in accepted:
                    raise ConfigError(
                        f"unknown GradScaler argument.{did_you_mean(str(key), accepted)} "
                        f"Accepted: {quoted_list(accepted)}",
                        key=f"loss_scale.{key}",
                    )
        else:
            self._fixed_scale = float(loss_scale)
            scaler_args = {"init_scale": self._fixed_scale}
        if self.use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            return ShardedGradScaler(device=self._device_type, **scaler_args)
        return _make_grad_scaler(self._device_type, scaler_args)

    def _watch_optimizer_steps(self) -> None:
        # GradScaler.step returns the same None whether or not it ran optimizer.step, so a
        # post-step hook tells us. The weak reference lets the wrapper be garbage-collected
        # while the optimizer lives on.
        wrapper_ref = weakref.ref(self)

        def note_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            wrapper = wrapper_ref()
            if wrapper is not None:
                wrapper._optimizer_stepped = True

        self._optimizer_stepped = False
        self.optimizer.register_step_post_hook(note_step)

    # ------------------------------------------------------------------ training step
    def backward(self, loss: torch.Tensor, **kwargs: Any) -> None:
        """Back-propagate ``loss``, multiplied by the loss scale when a scaler is used."""
        if self.loss_scaler is not None:
            loss = self.loss_scaler.scale(loss)
        loss.backward(**kwargs)
        self._inner_count += 1

    def step(self, **kwargs: Any) -> None:
        """Unscale the gradients, clip them if configured, and step.

        With a scaler, a step whose gradients hold inf/NaN is skipped (the parameters do
        not change), counted in :attr:`skipped_steps` and flagged in
        :attr:`last_step_skipped`; the dynamic scale then shrinks. The logger reports
        these skips. A step that ``nonfinite=dict(action='skip')`` skips for a non-finite
        loss leaves the scale and these counters as they were.
        """
        scaler = self.loss_scaler
        if scaler is None:
            super().step(**kwargs)
            return
        if self.clipper is not None:
            scaler.unscale_(self.optimizer)
            self._clip_grad()
        # nonfinite='skip' looks at the loss only: inf/NaN gradients of a finite loss are
        # the scaler's to skip, as in the reference (the scale shrinks, schedulers go on).
        if self._skip_guard is not None and self._skip_guard.skips_step(self._inner_count, None):
            # The scale holds; update() with it only forgets this step's unscale_.
            scaler.update(scaler.get_scale())
            return
        self._optimizer_stepped = False
        # GradScaler.step already reads the inf/NaN flag on the host, so knowing whether
        # it stepped costs no extra synchronisation.
        scaler.step(self.optimizer, **kwargs)
        scaler.update(self._fixed_scale)
        self.last_step_skipped = not self._optimizer_stepped
        if self.last_step_skipped:
            self.skipped_steps += 1

    def optim_context(self, model: nn.Module) -> AbstractContextManager:
        """Like :meth:`OptimWrapper.optim_context`, plus autocast to :attr:`cast_dtype`.

        Autocast uses the device type of the model's parameters.
        """
        sync_context = super().optim_context(model)
        if not self._autocast:
            return sync_context
        device_type = self._device_type
        for param in model.parameters():
            device_type = param.device.type
            break
        autocast = torch.autocast(device_type=device_type, dtype=self.cast_dtype)
        if sync_context is _NO_CONTEXT:
            return autocast
        return _nested(sync_context, autocast)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, plus ``loss_scaler`` when a scaler is used."""
        state = super().state_dict()
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load the optimizer state and, when both sides have one, the scaler state."""
        check_optimizer_state(state_dict, self.optimizer)
        state = dict(state_dict)
        scaler_state = state.pop("loss_scaler", None)
        if scaler_state is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler_state)
        elif scaler_state is not None:
            print_log(
                f"AmpOptimWrapper: the checkpoint has a loss scaler state, but dtype "
                f"{self.cast_dtype} uses no scaler; it is ignored.",
                logger="current",
                level=logging.WARNING,
            )
        elif self.loss_scaler is not None:
            print_log(
                "AmpOptimWrapper: the checkpoint has no loss scaler state; the scaler starts "
                "from its initial scale.",
                logger="current",
                level=logging.WARNING,
            )
        super().load_state_dict(state)

    def _extra_repr(self) -> str:
        dtype = str(self.cast_dtype).replace("torch.", "")
        scale = f", loss_scale={self._loss_scale!r}" if self.loss_scaler is not None else ""
        return f", dtype={dtype!r}{scale}"


@contextmanager
def _nested(outer: AbstractContextManager, inner: AbstractContextManager) -> Iterator[None]:
    with outer, inner:
        yield


def _device_type_of_optimizer(optimizer: torch.optim.Optimizer) -> str:
    for group in optimizer.param_groups:
        for param in group["params"]:
            return param.device.type
    return "cpu"


def _resolve_dtype(dtype: Any, device_type: str) -> torch.dtype:
    if dtype is None:
        return torch.float16 if device_type == "cuda" else torch.bfloat16
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    hint = did_you_mean(dtype, _DTYPES) if isinstance(dtype, str) else ""
    raise ConfigError(
        f"unsupported dtype {dtype!r}.{hint} Use one of {quoted_list(_DTYPES)}, the matching "
        "torch dtype, or None (float16 on CUDA, bfloat16 elsewhere).",
        key="dtype",
    )


def _check_loss_scale(loss_scale: Any) -> None:
    if loss_scale == "dynamic" or isinstance(loss_scale, Mapping):
        return
    if isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool) \
            and loss_scale > 0:
        return
    raise ConfigError(
        f"expected 'dynamic', a positive number (a fixed scale) or a dict of "
        f"torch.amp.GradScaler arguments, got {loss_scale!r}",
        key="loss_scale",
    )


def _grad_scaler_arguments() -> list[str]:
    scaler_class = getattr(torch.amp, "GradScaler", None) or torch.cuda.amp.GradScaler
    parameters = inspect.signature(scaler_class.__init__).parameters
    return [name for name in parameters if name != "self"]


def _make_grad_scaler(device_type: str, scaler_args: dict[str, Any]) -> Any:
    scaler_class = getattr(torch.amp, "GradScaler", None)
    if scaler_class is not None:
        scaler_args.setdefault("device", device_type)
        return scaler_class(**scaler_args)
    if device_type != "cuda":
        raise ConfigError(
            f"float16 on {device_type} needs a loss scaler for that device, which this torch "
            f"({torch.__version__}) lacks; use dtype='bfloat16' or torch >= 2.3",
            key="dtype",
        )
    return torch.cuda.amp.GradScaler(**scaler_args)
