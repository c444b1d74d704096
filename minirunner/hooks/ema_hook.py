"""`EMAHook`: keep a moving average of the model's weights and evaluate with it."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
from torch import nn

from minirunner.checkpoint import load_sharded_tensors
from minirunner.checkpoint.sharded import checkpoint_dir_entries
from minirunner.logging import print_log
from minirunner.model.averaged_model import (
    AveragedModelConfigError,
    BaseAveragedModel,
    check_averaged_model_args,
)
from minirunner.model.sharded_copy import copy_full_tensor
from minirunner.model.base_tta_model import BaseTTAModel
from minirunner.model.wrappers import is_model_wrapper
from minirunner.optim.nonfinite import skip_guards
from minirunner.registry import HOOKS, MODELS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .hook import Hook

# Checkpoint layout of the averages, the reference's: 'module.<name>' per tensor plus 'steps'.
_PREFIX = "module."


@HOOKS.register_module()
class EMAHook(Hook):
    """Average the model's weights during training; validate, test and save with the average.

    The average is an averaged model (``ema_model``) built from ``MODELS`` as
    ``dict(type=ema_type, model=<the model>, **kwargs)``; ``src_model`` is the model
    being trained (unwrapped from DDP). After every training iteration the average
    moves towards the weights: ``ema = (1 - w) * ema + w * param``, where ``w`` is
    the weight of the *new* value (as in the reference engine, not timm's decay):

    - ``'ExponentialMovingAverage'``: ``w = momentum`` (default 0.0002).
    - ``'MomentumAnnealingEMA'``: ``w = max(momentum, gamma / (gamma + steps))``.
    - ``'StochasticWeightAverage'``: ``w = 1 / (steps // interval + 1)``, the mean.
    - any other :class:`~minirunner.model.averaged_model.BaseAveragedModel` subclass
      registered in ``MODELS``.

    ``steps`` counts the updates since averaging began. The first update copies the
    weights; averaging starts with the second. Until ``begin_iter`` iterations (or
    ``begin_epoch`` epochs, counted from 1) have started, the average simply follows the
    weights, so it starts from the weights the model has when averaging begins. After an
    optimizer step skipped for a non-finite loss (``optim_wrapper.nonfinite``, action
    ``'skip'``) the average holds, as the iteration schedulers do.

    Validation and test run with the averaged weights: they are swapped into the model
    before the epoch and swapped back after it, restoring the training weights exactly.
    A saved checkpoint's ``state_dict`` holds the averaged weights (ready for inference)
    and ``ema_state_dict`` the training weights under the reference's keys
    (``'module.<name>'``, ``'steps'``). When a run resumes, the two are swapped back, so
    training continues from the raw weights with the averages intact.

    A model sharded by ``FSDPStrategy`` is averaged shard by shard: each rank keeps the
    averages of its own shards (DTensors; see
    :class:`~minirunner.model.sharded_copy.ShardedModelCopy`), validation copies them
    into the shards, and a sharded checkpoint holds them in DCP with the same layout (its
    ``model`` entry the averages, its ``ema_state_dict`` entry the training weights).

    Args:
        ema_type: the registered name (or class) of the averaged model.
        strict_load: raise when a checkpoint's tensors do not match the model's names
            and shapes (otherwise: a warning, and the matching tensors are loaded).
        begin_iter: the number of iterations after which averaging begins.
        begin_epoch: the number of epochs after which averaging begins; set at most one
            of ``begin_iter`` and ``begin_epoch``.
        **kwargs: arguments of the averaged model: ``momentum``, ``interval``,
            ``update_buffers``, ``device``, ``gamma`` (``MomentumAnnealingEMA``).

    Example:
        >>> custom_hooks = [dict(type='EMAHook', momentum=0.0002, begin_epoch=2)]
    """

    priority = "NORMAL"

    def __init__(
        self,
        ema_type: str | type = "ExponentialMovingAverage",
        strict_load: bool = False,
        begin_iter: int = 0,
        begin_epoch: int = 0,
        **kwargs: Any,
    ) -> None:
        ema_class = _averaged_model_class(ema_type)
        check_averaged_model_args(ema_class, kwargs)
        for key, value in (("begin_iter", begin_iter), ("begin_epoch", begin_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise AveragedModelConfigError(f"{key} must be an int >= 0, got {value!r}", key=key)
        if begin_iter and begin_epoch:
            raise AveragedModelConfigError(
                f"begin_iter ({begin_iter}) and begin_epoch ({begin_epoch}) are both set; "
                "set only one of them",
                key="begin_epoch",
            )
        momentum = kwargs.get("momentum", 0.0)
        if momentum > 0.5 and "momentum" in inspect.signature(ema_class).parameters:
            # A frequent slip when coming from timm-style EMAs, where 0.9998 means 0.0002 here.
            print_log(
                f"EMAHook: momentum={momentum} is the weight of the new value at each update, "
                f"so the average follows the weights closely; if you meant a decay, use "
                f"momentum={1 - momentum:.6g}",
                logger="current",
                level=logging.WARNING,
            )
        self.ema_cfg = dict(type=ema_type, **kwargs)
        self.strict_load = strict_load
        self.begin_iter = begin_iter
        self.begin_epoch = begin_epoch
        self.enabled_by_epoch = begin_epoch > 0

        self.src_model: nn.Module | None = None  # the (unwrapped) model being trained
        self.ema_model: BaseAveragedModel | None = None  # built in before_run
        self._swapped = False  # True while the model holds the averaged weights
        # Guards of optim wrappers that skip non-finite steps: the average holds after a skip.
        self._skip_guards: list[Any] = []

    @property
    def steps(self) -> int:
        """The number of updates since averaging began (the averaged model's ``steps``)."""
        return 0 if self.ema_model is None else self.ema_model._steps

    # ------------------------------------------------------------------ hook events
    def before_run(self, runner: Any) -> None:
        """Build the averaged model: a copy of the model's current weights.

        A second run on the same model (``runner.test()`` after ``runner.train()``)
        keeps the averages it has.
        """
        self._skip_guards = skip_guards(getattr(runner, "optim_wrapper", None))
        model = self._unwrap(runner.model)
        if self.ema_model is not None and model is self.src_model:
            self.ema_model._bind(model)
            return
        self.src_model = model
        self.ema_model = MODELS.build(self.ema_cfg, default_args=dict(model=model))
        self.ema_model._bind(model)

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
        ema_model = self.ema_model
        if ema_model is None:
            self._ensure_bound(runner)
            ema_model = self.ema_model
        if self._started(runner):
            ema_model.update_parameters(self.src_model)
        else:
            ema_model._follow(self.src_model)

    def event_handlers(self) -> dict[str, Any]:
        """After a step skipped for a non-finite loss, the average holds (see ``before_run``)."""
        handlers = super().event_handlers()
        if self._skip_guards and "after_train_iter" in handlers:
            handlers["after_train_iter"] = self._after_train_iter_holding
        return handlers

    def _after_train_iter_holding(
        self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None
    ) -> None:
        if not any(guard.holding() for guard in self._skip_guards):
            self.after_train_iter(runner, batch_idx, data_batch, outputs)

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
        if self.ema_model._sharded and not _holds_dtensor(checkpoint.get("state_dict") or {}):
            # A single file of a sharded model holds whole tensors: so do the averages
            # (every rank saves, so every rank takes part in gathering them).
            ema_state = {key: _whole(value) for key, value in ema_state.items()}
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
        if "sharded" in checkpoint:
            self._load_from_directory(runner, checkpoint["sharded"], resume is not False)
            return
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
        """The averages in the reference's layout: ``'steps'`` and ``'module.<name>'``
        (``ema_model.state_dict()``).

        The tensors are the live averages, not copies: clone them to keep a snapshot. For
        a model sharded by FSDP they are DTensors holding this rank's shards.
        """
        assert self.ema_model is not None, "EMAHook: before_run has not run yet"
        return dict(self.ema_model.state_dict())

    def load_ema_state_dict(self, state: dict[str, Any], strict: bool = False) -> None:
        """Load what :meth:`ema_state_dict` returned (also a reference engine checkpoint's)."""
        self._load_tensors(state, prefix=_PREFIX, strict=strict, what="ema_state_dict")
        if "steps" in state:
            self.ema_model._set_steps(int(state["steps"]))

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _unwrap(model: nn.Module) -> nn.Module:
        # DDP and test-time augmentation (PrepareTTAHook) wrap the model being averaged.
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        return model

    def _started(self, runner: Any) -> bool:
        if self.enabled_by_epoch:
            return runner.epoch + 1 >= self.begin_epoch
        return runner.iter + 1 >= self.begin_iter

    def _ensure_bound(self, runner: Any, rebind: bool = False) -> None:
        model = self._unwrap(runner.model)
        if self.ema_model is None:
            self.before_run(runner)
        elif rebind or model is not self.src_model:
            self.src_model = model
            self.ema_model._bind(model)

    def _swap(self, runner: Any) -> None:
        self._ensure_bound(runner, rebind=True)
        _exchange(self.ema_model._swap_pairs())
        self._swapped = not self._swapped

    def _copy_into_model(self, state: dict[str, Any]) -> None:
        ema_model = self.ema_model
        source = ema_model._source
        ema_model.reshard_model()
        with torch.no_grad():
            for name, value in state.items():
                slot = ema_model._slot_of.get(name)
                if slot is not None and isinstance(value, torch.Tensor) and value.shape == source[slot].shape:
                    copy_full_tensor(source[slot], value)

    def _load_from_directory(self, runner: Any, path: str, resume: bool) -> None:
        """Load the averages from a sharded checkpoint directory (DCP; every rank calls it).

        It holds them as a single file does: its ``model`` entry has the averaged weights,
        its ``ema_state_dict`` entry the training weights (``'module.<name>'``, ``'steps'``).
        Resuming, the runner has just loaded ``model`` into the model: the training weights
        are read into the averages, then the two are exchanged. Loading weights only, the
        average starts from the checkpoint's (averaged) weights, as from a single file.
        """
        ema_model = self.ema_model
        group = getattr(getattr(runner, "strategy", None), "checkpoint_group", None)
        live = self.ema_state_dict()
        names = [key[len(_PREFIX):] for key in live if key.startswith(_PREFIX)]
        if resume and "ema_state_dict" in checkpoint_dir_entries(path):
            steps = torch.zeros((), dtype=torch.long)
            load_sharded_tensors({"ema_state_dict": {**live, "steps": steps}}, path, process_group=group)
            # As resuming from a file does: every tensor, buffers included, changes sides.
            self._ensure_bound(runner, rebind=True)
            ema_model.reshard_model()
            _exchange(zip(ema_model._local_tensors, ema_model._local_source))
            ema_model._set_steps(int(steps))
            return
        if resume:
            print_log(
                f"EMAHook: the checkpoint {path} has no 'ema_state_dict'; the average restarts from "
                "the checkpoint's weights",
                logger="current",
                level=logging.WARNING,
            )
        load_sharded_tensors({"model": {name: live[_PREFIX + name] for name in names}}, path, process_group=group)

    def _load_tensors(self, state: dict[str, Any], prefix: str, strict: bool, what: str) -> None:
        ema_model = self.ema_model
        slot_of, tensors = ema_model._slot_of, ema_model._tensors
        state_names = list(ema_model.module.state_dict())
        missing = [name for name in state_names if prefix + name not in state]
        unexpected, mismatched = [], []
        loads = []
        for key, value in state.items():
            if not key.startswith(prefix) or (prefix and key == "steps"):
                if key != "steps":
                    unexpected.append(key)
                continue
            slot = slot_of.get(key[len(prefix):])
            if slot is None:
                unexpected.append(key)
            elif not isinstance(value, torch.Tensor) or value.shape != tensors[slot].shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                mismatched.append(f"{key} {shape} vs {tuple(tensors[slot].shape)}")
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
                copy_full_tensor(tensors[slot], value)


def _averaged_model_class(ema_type: Any) -> type:
    """The averaged model class ``ema_type`` names, or a ConfigError naming ``ema_type``."""
    if isinstance(ema_type, str):
        found = MODELS.get(ema_type)
        if found is None:
            known = [n for n, obj in MODELS.module_dict.items() if _is_averaged_model(obj)]
            raise AveragedModelConfigError(
                f"unknown ema_type {ema_type!r}.{did_you_mean(ema_type, known)} Use one of "
                f"{quoted_list(known)}, or register a BaseAveragedModel subclass in MODELS",
                key="ema_type",
            )
        ema_type = found
    if not _is_averaged_model(ema_type):
        raise AveragedModelConfigError(
            f"ema_type must name a BaseAveragedModel subclass, got {ema_type!r}", key="ema_type"
        )
    return ema_type


def _is_averaged_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseAveragedModel)


def _holds_dtensor(state: dict) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(value, DTensor) for value in state.values())


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def _exchange(pairs: Any) -> None:
    """Exchange the values of each ``(a, b)`` pair of tensors in place."""
    with torch.no_grad():
        for a, b in pairs:
            held = a.clone()
            a.copy_(b)
            b.copy_(held)


def _swap_entries(model_state: dict, ema_state: dict) -> None:
    """Exchange ``model_state[name]`` and ``ema_state['module.' + name]`` for shared names."""
    for key in ema_state:
        name = key[len(_PREFIX):]
        if key.startswith(_PREFIX) and name in model_state:
            model_state[name], ema_state[key] = ema_state[key], model_state[name]
