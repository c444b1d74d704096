"""`EMAHook`: keep a moving average of the model's weights and evaluate with it."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from minirunner.logging import print_log
from minirunner.model.wrappers import is_model_wrapper
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .hook import Hook

EMA_TYPES = ("ExponentialMovingAverage", "MomentumAnnealingEMA", "StochasticWeightAverage")

# Checkpoint layout of the averages, the reference's: 'module.<name>' per tensor plus 'steps'.
_PREFIX = "module."


def _foreach_copy(dst: list[torch.Tensor], src: list[torch.Tensor]) -> None:
    if dst:
        torch._foreach_copy_(dst, src)


@HOOKS.register_module()
class EMAHook(Hook):
    """Average the model's weights during training; validate, test and save with the average.

    After every training iteration each averaged tensor moves towards the model's tensor:
    ``ema = (1 - w) * ema + w * param``. ``w`` is the weight of the *new* value (as in
    the reference engine, not timm's ``decay = 1 - w``):

    - ``'ExponentialMovingAverage'``: ``w = momentum``.
    - ``'MomentumAnnealingEMA'``: ``w = max(momentum, gamma / (gamma + steps))``, large at
      first and annealed down to ``momentum``.
    - ``'StochasticWeightAverage'``: ``w = 1 / (steps // interval + 1)``, the plain mean of
      the weights seen at each update (``momentum`` is not used).

    ``steps`` counts the updates since averaging began. The first update copies the
    weights; averaging starts with the second. Until ``begin_iter`` iterations (or
    ``begin_epoch`` epochs, counted from 1) have started, the average simply follows the
    weights, so it starts from the weights the model has when averaging begins.

    Buffers (BatchNorm statistics, ...) are copied from the model at each update unless
    ``update_buffers=True``, which averages the floating-point ones too. Integer tensors
    are always copied.

    Validation and test run with the averaged weights: they are swapped into the model
    before the epoch and swapped back after it, restoring the training weights exactly.
    A saved checkpoint's ``state_dict`` holds the averaged weights (ready for inference)
    and ``ema_state_dict`` the training weights under the reference's keys
    (``'module.<name>'``, ``'steps'``). When a run resumes, the two are swapped back, so
    training continues from the raw weights with the averages intact.

    Args:
        ema_type: one of ``'ExponentialMovingAverage'``, ``'MomentumAnnealingEMA'``,
            ``'StochasticWeightAverage'``.
        strict_load: raise when a checkpoint's tensors do not match the model's names
            and shapes (otherwise: a warning, and the matching tensors are loaded).
        begin_iter: the number of iterations after which averaging begins.
        begin_epoch: the number of epochs after which averaging begins; set at most one
            of ``begin_iter`` and ``begin_epoch``.
        momentum: the weight of the new value, in (0, 1). Default 0.0002.
        interval: average every ``interval`` iterations (buffers follow at every one).
        update_buffers: average floating-point buffers instead of copying them.
        gamma: ``MomentumAnnealingEMA`` only: how slowly the weight anneals (default 100).

    Example:
        >>> custom_hooks = [dict(type='EMAHook', momentum=0.0002, begin_epoch=2)]
    """

    priority = "NORMAL"

    def __init__(
        self,
        ema_type: str = "ExponentialMovingAverage",
        strict_load: bool = False,
        begin_iter: int = 0,
        begin_epoch: int = 0,
        momentum: float = 0.0002,
        interval: int = 1,
        update_buffers: bool = False,
        gamma: float | None = None,
    ) -> None:
        if ema_type not in EMA_TYPES:
            raise ConfigError(
                f"unknown ema_type {ema_type!r}.{did_you_mean(str(ema_type), EMA_TYPES)} "
                f"Use one of {quoted_list(EMA_TYPES)}",
                key="ema_type",
            )
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 < momentum < 1:
            raise ConfigError(
                f"momentum must be a number in (0, 1), got {momentum!r}; it is the weight of the "
                "new value (ema = (1 - momentum) * ema + momentum * param), e.g. 0.0002",
                key="momentum",
            )
        for key, value in (("begin_iter", begin_iter), ("begin_epoch", begin_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{key} must be an int >= 0, got {value!r}", key=key)
        if begin_iter and begin_epoch:
            raise ConfigError(
                f"begin_iter ({begin_iter}) and begin_epoch ({begin_epoch}) are both set; "
                "set only one of them",
                key="begin_epoch",
            )
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigError(f"interval must be an int >= 1, got {interval!r}", key="interval")
        if gamma is not None and ema_type != "MomentumAnnealingEMA":
            raise ConfigError(
                f"gamma only applies to ema_type='MomentumAnnealingEMA', not {ema_type!r}; "
                "remove it or change ema_type",
                key="gamma",
            )
        if ema_type == "MomentumAnnealingEMA":
            gamma = 100 if gamma is None else gamma
            if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma <= 0:
                raise ConfigError(f"gamma must be a number > 0, got {gamma!r}", key="gamma")
        if momentum > 0.5 and ema_type != "StochasticWeightAverage":
            # A frequent slip when coming from timm-style EMAs, where 0.9998 means 0.0002 here.
            print_log(
                f"EMAHook: momentum={momentum} is the weight of the new value at each update, "
                f"so the average follows the weights closely; if you meant a decay, use "
                f"momentum={1 - momentum:.6g}",
                logger="current",
                level=logging.WARNING,
            )
        self.ema_type = ema_type
        self.strict_load = strict_load
        self.begin_iter = begin_iter
        self.begin_epoch = begin_epoch
        self.enabled_by_epoch = begin_epoch > 0
        self.momentum = float(momentum)
        self.interval = interval
        self.update_buffers = update_buffers
        self.gamma = gamma

        self.steps = 0  # updates since averaging began; a Python int, so no host sync
        self._model: nn.Module | None = None  # the (unwrapped) model being averaged
        self._slot_of: dict[str, int] = {}  # every parameter/buffer name (tied ones too) -> slot
        self._state_names: list[str] = []  # the names that go into checkpoints
        self._ema: list[torch.Tensor] = []  # one averaged tensor per distinct model tensor
        self._is_param: list[bool] = []
        self._src: list[torch.Tensor] | None = None  # the model's tensor per slot
        self._swap_slots: list[int] = []
        self._swapped = False  # True while the model holds the averaged weights

    # ------------------------------------------------------------------ hook events
    def before_run(self, runner: Any) -> None:
        """Copy the model's current weights as the initial average.

        A second run on the same model (``runner.test()`` after ``runner.train()``)
        keeps the averages it has.
        """
        model = self._unwrap(runner.model)
        if model is self._model:
            self._bind(model)
        else:
            self._create(model)

    def before_train(self, runner: Any) -> None:
        """Check the begin point against the run's length; re-bind to the model's tensors."""
        if self.enabled_by_epoch and self.begin_epoch > runner.max_epochs:
            raise ConfigError(
                f"begin_epoch ({self.begin_epoch}) is after the last epoch ({runner.max_epochs}); "
                "the average would never start. Lower begin_epoch",
                key="begin_epoch",
            )
        if not self.enabled_by_epoch and self.begin_iter > runner.max_iters:
            raise ConfigError(
                f"begin_iter ({self.begin_iter}) is after the last iteration ({runner.max_iters}); "
                "the average would never start. Lower begin_iter",
                key="begin_iter",
            )
        # The runner may have moved the model (and so replaced its buffers) since before_run.
        self._ensure_bound(runner, rebind=True)

    def after_train_iter(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        """Update the average (or, before the begin point, follow the weights)."""
        if self._src is None:
            self._ensure_bound(runner)
        with torch.no_grad():
            if not self._started(runner):
                _foreach_copy(self._ema, self._src)
                return
            if self.steps == 0:
                _foreach_copy(self._ema, self._src)
            else:
                if self.steps % self.interval == 0 and self._avg_dst:
                    torch._foreach_lerp_(self._avg_dst, self._avg_src, self._weight())
                _foreach_copy(self._copy_dst, self._copy_src)
            self.steps += 1

    def before_val_epoch(self, runner: Any) -> None:
        """Put the averaged weights into the model for validation."""
        if not self._swapped:
            self._swap(runner)

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Give the model its training weights back."""
        if self._swapped:
            self._swap(runner)

    def before_test_epoch(self, runner: Any) -> None:
        """Put the averaged weights into the model for testing."""
        if not self._swapped:
            self._swap(runner)

    def after_test_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        """Give the model its training weights back."""
        if self._swapped:
            self._swap(runner)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Save the averages; the checkpoint's ``state_dict`` gets the averaged weights."""
        self._ensure_bound(runner)
        ema_state = self.ema_state_dict()
        checkpoint["ema_state_dict"] = ema_state
        # Swapping dict entries, not model tensors: both dicts hold references to the live
        # tensors, and the model must keep training with its own weights. A checkpoint
        # saved during validation already has the averaged weights in the model.
        if checkpoint.get("state_dict") is not None and not self._swapped:
            _swap_entries(checkpoint["state_dict"], ema_state)

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        """Restore the averages from a checkpoint.

        When resuming from a checkpoint this hook saved, the two weight sets are swapped
        back: ``checkpoint['state_dict']`` (and the model) get the raw training weights,
        the average gets ``ema_state_dict``. When only loading weights (``load_from``
        without ``resume``), the model keeps the checkpoint's (averaged) weights and the
        average starts from them, as in the reference. The runner tells the two apart with
        ``runner._loading_weights_only`` (set while it loads weights only), else
        ``runner._resume``; a runner with neither attribute is treated as resuming.
        """
        self._ensure_bound(runner)
        # The runner marks a weights-only load (load_from without resume, or a resume
        # that found nothing and fell back to load_from); otherwise its `resume` decides.
        resume = False if getattr(runner, "_loading_weights_only", False) else getattr(runner, "_resume", None)
        model_state = checkpoint.get("state_dict")
        ema_state = checkpoint.get("ema_state_dict")
        if ema_state is not None and resume is not False:
            if model_state is not None:
                _swap_entries(model_state, ema_state)
                # The runner loads checkpoint['state_dict'] into the model before or after
                # this event; writing the raw weights now makes both orders resume exactly.
                self._copy_into_model(model_state)
            self.load_ema_state_dict(ema_state, strict=self.strict_load)
            return
        if resume:
            print_log(
                "EMAHook: the checkpoint has no 'ema_state_dict'; the average restarts from "
                "the checkpoint's weights",
                logger="current",
                level=logging.WARNING,
            )
        if model_state is not None:
            self._load_tensors(model_state, prefix="", strict=self.strict_load, what="state_dict")

    # ------------------------------------------------------------------ state
    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """The averages in the reference's layout: ``'module.<name>'`` per tensor, ``'steps'``.

        The tensors are the live averages, not copies: clone them to keep a snapshot.
        """
        state: dict[str, torch.Tensor] = {"steps": torch.tensor(self.steps, dtype=torch.long)}
        for name in self._state_names:
            state[_PREFIX + name] = self._ema[self._slot_of[name]]
        return state

    def load_ema_state_dict(self, state: dict[str, Any], strict: bool = False) -> None:
        """Load what :meth:`ema_state_dict` returned (also a reference engine checkpoint's)."""
        self._load_tensors(state, prefix=_PREFIX, strict=strict, what="ema_state_dict")
        if "steps" in state:
            self.steps = int(state["steps"])

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _unwrap(model: nn.Module) -> nn.Module:
        return model.module if is_model_wrapper(model) else model

    def _started(self, runner: Any) -> bool:
        if self.enabled_by_epoch:
            return runner.epoch + 1 >= self.begin_epoch
        return runner.iter + 1 >= self.begin_iter

    def _weight(self) -> float:
        if self.ema_type == "ExponentialMovingAverage":
            return self.momentum
        if self.ema_type == "MomentumAnnealingEMA":
            return max(self.momentum, self.gamma / (self.gamma + self.steps))
        return 1.0 / (self.steps // self.interval + 1)

    @staticmethod
    def _named_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
        # remove_duplicate=False lists tied weights under every name, so each checkpoint key
        # maps to its averaged tensor.
        named = [(n, p, True) for n, p in model.named_parameters(remove_duplicate=False)]
        named += [(n, b, False) for n, b in model.named_buffers(remove_duplicate=False)]
        return named

    def _create(self, model: nn.Module) -> None:
        slot_of_tensor: dict[int, int] = {}
        self._slot_of, self._ema, self._is_param = {}, [], []
        for name, tensor, is_param in self._named_tensors(model):
            slot = slot_of_tensor.get(id(tensor))
            if slot is None:
                slot = slot_of_tensor[id(tensor)] = len(self._ema)
                self._ema.append(tensor.detach().clone())
                self._is_param.append(is_param)
            self._slot_of[name] = slot
        # Non-persistent buffers are averaged but, like the model's, never saved.
        self._state_names = [name for name in model.state_dict() if name in self._slot_of]
        self.steps = 0
        self._bind(model)

    def _bind(self, model: nn.Module) -> None:
        """Point the per-slot source list at the model's current tensors."""
        src: list[torch.Tensor | None] = [None] * len(self._ema)
        for name, tensor, _ in self._named_tensors(model):
            slot = self._slot_of.get(name)
            if slot is None:
                raise RuntimeError(
                    f"EMAHook: the model gained the tensor {name!r} after the average was "
                    "created; build the whole model before training starts"
                )
            src[slot] = tensor
        missing = [name for name, slot in self._slot_of.items() if src[slot] is None]
        if missing:
            raise RuntimeError(f"EMAHook: the model lost the tensor(s) {quoted_list(missing)}")
        for slot, tensor in enumerate(src):
            if self._ema[slot].device != tensor.device:
                self._ema[slot] = self._ema[slot].to(tensor.device)
        self._model = model
        self._src = src  # type: ignore[assignment]
        averaged = [
            slot for slot in range(len(src))
            if (self._is_param[slot] or self.update_buffers)
            and (self._ema[slot].is_floating_point() or self._ema[slot].is_complex())
        ]
        copied = sorted(set(range(len(src))) - set(averaged))
        self._avg_dst = [self._ema[s] for s in averaged]
        self._avg_src = [src[s] for s in averaged]
        self._copy_dst = [self._ema[s] for s in copied]
        self._copy_src = [src[s] for s in copied]
        self._swap_slots = [s for s in range(len(src)) if self._is_param[s] or self.update_buffers]

    def _ensure_bound(self, runner: Any, rebind: bool = False) -> None:
        model = self._unwrap(runner.model)
        if self._model is None:
            self._create(model)
        elif rebind or model is not self._model:
            self._bind(model)

    def _swap(self, runner: Any) -> None:
        self._ensure_bound(runner, rebind=True)
        with torch.no_grad():
            for slot in self._swap_slots:
                ema, src = self._ema[slot], self._src[slot]
                held = ema.clone()
                ema.copy_(src)
                src.copy_(held)
        self._swapped = not self._swapped

    def _copy_into_model(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for name, value in state.items():
                slot = self._slot_of.get(name)
                if slot is not None and isinstance(value, torch.Tensor) and value.shape == self._src[slot].shape:
                    self._src[slot].copy_(value)

    def _load_tensors(self, state: dict[str, Any], prefix: str, strict: bool, what: str) -> None:
        missing = [name for name in self._state_names if prefix + name not in state]
        unexpected, mismatched = [], []
        loads = []
        for key, value in state.items():
            if not key.startswith(prefix) or (prefix and key == "steps"):
                if key != "steps":
                    unexpected.append(key)
                continue
            slot = self._slot_of.get(key[len(prefix):])
            if slot is None:
                unexpected.append(key)
            elif not isinstance(value, torch.Tensor) or value.shape != self._ema[slot].shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                mismatched.append(f"{key} {shape} vs {tuple(self._ema[slot].shape)}")
            else:
                loads.append((slot, value))
        problems = []
        if missing:
            problems.append(f"missing keys: {quoted_list(prefix + n for n in missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {quoted_list(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatch: {', '.join(mismatched)}")
        if problems and strict:
            raise RuntimeError(
                f"EMAHook: the checkpoint's {what} does not match the model ({'; '.join(problems)}). "
                "Use the checkpoint of this model, or set strict_load=False to load what matches"
            )
        if problems:
            print_log(
                f"EMAHook: loaded the matching tensors of the checkpoint's {what}; "
                + "; ".join(problems),
                logger="current",
                level=logging.WARNING,
            )
        with torch.no_grad():
            for slot, value in loads:
                self._ema[slot].copy_(value)


def _swap_entries(model_state: dict, ema_state: dict) -> None:
    """Exchange ``model_state[name]`` and ``ema_state['module.' + name]`` for shared names."""
    for key in ema_state:
        name = key[len(_PREFIX):]
        if key.startswith(_PREFIX) and name in model_state:
            model_state[name], ema_state[key] = ema_state[key], model_state[name]
