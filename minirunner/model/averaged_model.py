"""Averaged copies of a model's weights: EMA, EMA with momentum annealing, SWA.

The classes follow the reference engine's ``mmengine.model.averaged_model``: each is an
``nn.Module`` holding a copy of the model as ``module`` and an update counter as the
buffer ``steps``, so ``state_dict()`` has the reference's layout (``'steps'`` plus
``'module.<name>'``) and ``EMAHook`` can save and resume it. They are registered in
``MODELS``, from where ``EMAHook(ema_type=...)`` builds them.

A model sharded by FSDP2 (``fully_shard``: its parameters are DTensors) is not deep-copied
(that would copy FSDP's hooks and state): the average holds clones of this rank's shards in
a plain module tree of the same names (:class:`ShardedModelCopy`), and every update works
on the local shards only, so each rank keeps the average of what it holds.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from copy import deepcopy
from typing import Any

import torch
from torch import Tensor, nn

from minirunner.registry import MODELS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .sharded_copy import ShardedModelCopy, fsdp_modules, local_shards


class AveragedModelConfigError(ConfigError, AssertionError):
    """A bad argument of an averaged model (``momentum``, ``gamma``, ``interval``).

    The reference asserts these, so code written for it catches ``AssertionError``; this
    class is both that and a :class:`ConfigError`.
    """

    def __str__(self) -> str:
        return self._message()


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


class BaseAveragedModel(nn.Module):
    """A copy of ``model`` whose weights are a running average of the model's weights.

    Subclasses define :meth:`avg_func`. :meth:`update_parameters` is called with the
    (changing) model after each optimizer step:

    - the first update copies every weight;
    - later updates average the parameters (and, with ``update_buffers=True``, the
      floating-point buffers) on every ``interval``-th update, through :meth:`avg_func`;
    - tensors that are not averaged (buffers by default, integer tensors always) are
      copied from the model at every update, so BatchNorm statistics and counters stay
      those of the model.

    ``steps`` (a buffer, saved in ``state_dict``) counts the updates. Tied weights are
    averaged once. The copy lives on ``device`` when given; otherwise it follows the
    devices of the model's tensors.

    A model sharded by FSDP2 is not deep-copied: ``module`` is then a
    :class:`ShardedModelCopy` holding clones of this rank's shards (DTensors), which
    :meth:`avg_func` and the updates see as local tensors (the shard of each rank), so an
    ``avg_func`` of its own must work element by element.

    Args:
        model: the model to average; it is deep-copied (sharded: its shards are cloned).
        interval: average every ``interval`` updates. Default 1.
        device: where to keep the averages; None keeps them beside the model's weights
            (sharded models: only None or the shards' own device).
        update_buffers: also average the floating-point buffers instead of copying them.

    Example:
        >>> from minirunner.model.averaged_model import ExponentialMovingAverage
        >>> student = nn.Linear(2, 2)
        >>> teacher = ExponentialMovingAverage(student, momentum=0.001)
        >>> teacher.update_parameters(student)  # after each optimizer step
    """

    def __init__(
        self,
        model: nn.Module,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        super().__init__()
        _check_interval(interval)
        self.device = None if device is None else torch.device(device)
        # FSDP2's modules, when `model` is sharded: resharded before the shards are read.
        self._fsdp_modules = fsdp_modules(model)
        self._sharded = bool(self._fsdp_modules)
        if self._sharded:
            self.module = ShardedModelCopy.of(model, self.device)
        else:
            self.module = deepcopy(model)
        self.interval = interval
        if self.device is not None and not self._sharded:
            self.module = self.module.to(self.device)
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long, device=self.device))
        self.update_buffers = update_buffers
        # The averaged tensors by name, as in the reference (state_dict entries or parameters).
        self.avg_parameters: dict[str, Tensor] = (
            self.module.state_dict() if update_buffers else dict(self.module.named_parameters())
        )
        # A Python mirror of `steps`: deciding what an update does needs no tensor read.
        self._steps = 0
        self.register_load_state_dict_post_hook(_sync_steps)
        self._index_tensors()
        self._source: list[Tensor] | None = None
        self._set_source_model(None)

    # ------------------------------------------------------------------ the average
    @abstractmethod
    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: Tensor) -> None:
        """Move ``averaged_param`` (in place) towards ``source_param``.

        ``steps`` is the number of updates so far (the ``steps`` buffer).
        """

    def _lerp_weight(self, steps: int) -> float | None:
        """The weight of the new value when :meth:`avg_func` is ``lerp_`` with it, else None.

        Lets :meth:`update_parameters` average every tensor with one ``_foreach_lerp_``
        instead of one Python call per tensor.
        """
        return None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the averaged model."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average and count the update.

        ``model`` must have the architecture of the averaged model. Its tensors are looked
        up once per model object (not at every update): after ``model.to(...)``, which
        replaces its buffers, pair them again with ``_bind(model)``, as ``EMAHook`` does
        before training and around validation.
        """
        if model is not self._source_model:
            self._bind(model)
        if self._sharded:
            self._takelocal_shards()
        steps = self._steps
        copy_src = self._copy_src
        with torch.no_grad():
            if steps == 0:
                _foreach_copy(self._local_tensors, self._cast(self._local_source, self._local_tensors))
            else:
                if steps % self.interval == 0 and self._avg_dst:
                    avg_src = self._cast(self._avg_src, self._avg_dst) if self._needs_cast else self._avg_src
                    if self._lerp:
                        torch._foreach_lerp_(self._avg_dst, avg_src, self._lerp_weight(steps))
                    else:
                        for dst, src in zip(self._avg_dst, avg_src):
                            self.avg_func(dst, src, self._steps_tensor)
                if copy_src:
                    if self._needs_cast:
                        copy_src = self._cast(copy_src, self._copy_dst)
                    torch._foreach_copy_(self._copy_dst, copy_src)
        self._set_steps(steps + 1)

    # ------------------------------------------------------------------ helpers for EMAHook
    def _index_tensors(self) -> None:
        """One slot per distinct tensor of ``module`` (tied weights share one)."""
        self.__dict__["_steps_tensor"] = self.steps
        slot_of_tensor: dict[int, int] = {}
        self._slot_of: dict[str, int] = {}
        self._tensors: list[Tensor] = []
        self._is_param: list[bool] = []
        # Where each slot's tensor is stored, to move it without replacing the Parameter.
        self._owners: list[list[tuple[nn.Module, str]]] = []
        for module_name, owner in self.module.named_modules(remove_duplicate=False):
            prefix = f"{module_name}." if module_name else ""
            for store, is_param in ((owner._parameters, True), (owner._buffers, False)):
                for name, tensor in store.items():
                    if tensor is None:
                        continue
                    slot = slot_of_tensor.get(id(tensor))
                    if slot is None:
                        slot = slot_of_tensor[id(tensor)] = len(self._tensors)
                        self._tensors.append(tensor)
                        self._is_param.append(is_param)
                        self._owners.append([])
                    if (owner, name) not in self._owners[slot]:
                        self._owners[slot].append((owner, name))
                    self._slot_of.setdefault(prefix + name, slot)
        averaged = [
            slot for slot, tensor in enumerate(self._tensors)
            if (self._is_param[slot] or self.update_buffers) and (tensor.is_floating_point() or tensor.is_complex())
        ]
        self._averaged = averaged
        self._copied = sorted(set(range(len(self._tensors))) - set(averaged))
        self._lerp = _uses_lerp(self)

    def _bind(self, model: nn.Module) -> None:
        """Pair each averaged tensor with the tensor of the same name in ``model``.

        Without a fixed ``device``, averaged tensors on another device than the model's
        are moved there (the runner may move the model after the average was made). A
        sharded model is resharded first, so that its parameters are its shards.
        """
        self.reshard_model()
        source: list[Tensor | None] = [None] * len(self._tensors)
        named = list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False))
        for name, tensor in named:
            slot = self._slot_of.get(name)
            if slot is None:
                raise RuntimeError(
                    f"{type(self).__name__}: the model has the tensor {name!r} that the averaged "
                    "copy lacks; build the whole model before averaging it"
                )
            source[slot] = tensor
        missing = sorted(name for name, slot in self._slot_of.items() if source[slot] is None)
        if missing:
            raise RuntimeError(f"{type(self).__name__}: the model lacks the tensor(s) {missing}")
        if self.device is None and not self._sharded:
            self._follow_devices(source)  # type: ignore[arg-type]
        self._source = source  # type: ignore[assignment]
        self._set_source_model(model)
        self._needs_cast = any(
            t.device != s.device or t.dtype != s.dtype for t, s in zip(self._tensors, source)  # type: ignore[union-attr]
        )
        if self._sharded:
            self._takelocal_shards()
            return
        # The lists each update works on, built once per binding.
        self._local_tensors, self._local_source = self._tensors, source
        self._avg_dst = [self._tensors[s] for s in self._averaged]
        self._avg_src = [source[s] for s in self._averaged]
        self._copy_dst = [self._tensors[s] for s in self._copied]
        self._copy_src = [source[s] for s in self._copied]

    def _takelocal_shards(self) -> None:
        """The lists of a sharded model's update: this rank's shards of the averages and of
        the model. Taken again at each update (one attribute read per tensor): FSDP2 may
        replace a parameter's local tensor (at its lazy initialisation, or when a state dict
        is assigned)."""
        tensors, source = local_shards(self._tensors), local_shards(self._source)  # type: ignore[arg-type]
        self._local_tensors, self._local_source = tensors, source
        self._avg_dst = [tensors[s] for s in self._averaged]
        self._avg_src = [source[s] for s in self._averaged]
        self._copy_dst = [tensors[s] for s in self._copied]
        self._copy_src = [source[s] for s in self._copied]

    def _set_source_model(self, model: nn.Module | None) -> None:
        # Not through nn.Module.__setattr__: the model must not become a submodule (it
        # would be saved in state_dict and moved with the average).
        object.__setattr__(self, "_source_model", model)

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "BaseAveragedModel":
        # `.to()`, `.cuda()`, `.half()` replace buffers: index the new tensors, and pair
        # them with the model's again at the next update.
        result = super()._apply(fn, *args, **kwargs)
        self._index_tensors()
        self._source = None
        self._set_source_model(None)
        return result

    def _cast(self, source: list[Tensor], like: list[Tensor]) -> list[Tensor]:
        # With a fixed `device` (or a copy in another dtype) the model's tensors are
        # converted at each update, as the reference does; usually nothing differs.
        if not self._needs_cast:
            return source
        return [s.to(device=d.device, dtype=d.dtype, non_blocking=True) for s, d in zip(source, like)]

    def _follow_devices(self, source: list[Tensor]) -> None:
        moved = False
        for slot, src in enumerate(source):
            tensor = self._tensors[slot]
            if tensor.device == src.device:
                continue
            moved = True
            if self._is_param[slot]:
                tensor.data = tensor.data.to(src.device)  # keeps the Parameter (and its ties)
            else:
                tensor = tensor.to(src.device)
                for owner, name in self._owners[slot]:
                    owner._buffers[name] = tensor
                self._tensors[slot] = tensor
        if moved:
            self.avg_parameters = (
                self.module.state_dict() if self.update_buffers else dict(self.module.named_parameters())
            )

    def _follow(self, model: nn.Module) -> None:
        """Copy every weight of ``model`` without counting an update (before averaging begins)."""
        if model is not self._source_model:
            self._bind(model)
        if self._sharded:
            self._takelocal_shards()
        with torch.no_grad():
            _foreach_copy(self._local_tensors, self._cast(self._local_source, self._local_tensors))

    def _swap_pairs(self) -> list[tuple[Tensor, Tensor]]:
        """(averaged, model) tensor pairs that validation swaps: the parameters, and the
        buffers too with ``update_buffers=True``; this rank's shards for a sharded model,
        whose parameters the call reshards first (see :meth:`reshard_model`)."""
        assert self._source is not None, "call _bind(model) first"
        tensors, source = self._tensors, self._source
        if self._sharded:
            self.reshard_model()
            tensors, source = local_shards(tensors), local_shards(source)
        return [(tensors[s], source[s]) for s in range(len(tensors)) if self._is_param[s] or self.update_buffers]

    def reshard_model(self) -> None:
        """Have FSDP2 free the model's gathered (unsharded) parameters, if any (nothing for
        a model that is not sharded).

        FSDP2 computes with parameters all-gathered from the shards and keeps them after a
        forward pass that does not reshard (the root, ``reshard_after_forward=False``); a
        value written into the shards reaches the next forward only once those are gone.
        """
        for fsdp_module in self._fsdp_modules:
            fsdp_module.reshard()

    def _set_steps(self, steps: int) -> None:
        # Straight into __dict__ and the buffer: this runs at every update, and
        # nn.Module's __setattr__/__getattr__ cost more than the rest of it.
        self.__dict__["_steps"] = steps
        self._steps_tensor.fill_(steps)


def _sync_steps(module: nn.Module, incompatible_keys: Any) -> None:
    # After load_state_dict the buffer holds the loaded count; the mirror follows it.
    module.__dict__["_steps"] = int(module.steps)


def _foreach_copy(dst: list[Tensor], src: list[Tensor]) -> None:
    if dst:
        torch._foreach_copy_(dst, src)


def check_averaged_model_args(cls: type, kwargs: dict[str, Any]) -> None:
    """Raise a ConfigError naming the key when ``cls(model, **kwargs)`` would be refused.

    Lets ``EMAHook`` report a bad ``momentum`` or an argument of another averaged model
    (``gamma`` for an ``ExponentialMovingAverage``) when the config is read, before any
    model exists.
    """
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted = [n for n, p in params.items() if n != "model" and p.kind is not inspect.Parameter.VAR_POSITIONAL]
        for key in kwargs:
            if key not in accepted:
                raise AveragedModelConfigError(
                    f"{cls.__name__} takes no argument {key!r}; it takes {quoted_list(accepted)}."
                    f"{did_you_mean(key, accepted)} Remove it or choose another ema_type",
                    key=key,
                )
    if "momentum" in kwargs:
        _check_momentum(kwargs["momentum"])
    if "interval" in kwargs:
        _check_interval(kwargs["interval"])
    if "gamma" in kwargs:
        _check_gamma(kwargs["gamma"])


def _check_interval(interval: Any) -> None:
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise AveragedModelConfigError(f"interval must be an int >= 1, got {interval!r}", key="interval")


def _check_gamma(gamma: Any) -> None:
    if not _is_number(gamma) or gamma <= 0:
        raise AveragedModelConfigError(f"gamma must be a number > 0, got {gamma!r}", key="gamma")


def _check_momentum(momentum: Any) -> float:
    if not _is_number(momentum) or not 0 < momentum < 1:
        raise AveragedModelConfigError(
            f"momentum must be a number in (0, 1), got {momentum!r}; it is the weight of the "
            "new value (ema = (1 - momentum) * ema + momentum * param), e.g. 0.0002",
            key="momentum",
        )
    return float(momentum)


@MODELS.register_module()
class StochasticWeightAverage(BaseAveragedModel):
    """Stochastic weight averaging (Izmailov et al., 2018): the plain mean of the weights.

    At the n-th averaging update (n counted from 0 at the first, copying, update) the
    weight of the new value is ``1 / (steps // interval + 1)``.
    """

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: Tensor) -> None:
        """``avg += (src - avg) / (steps // interval + 1)``."""
        averaged_param.lerp_(source_param, self._lerp_weight(int(steps)))

    def _lerp_weight(self, steps: int) -> float:
        return 1.0 / (steps // self.interval + 1)


@MODELS.register_module()
class ExponentialMovingAverage(BaseAveragedModel):
    """Exponential moving average: ``avg = (1 - momentum) * avg + momentum * param``.

    ``momentum`` is the weight of the new value (default 0.0002), as in the reference
    engine, not a timm-style decay (which would be ``1 - momentum``).

    Args:
        model: the model to average; it is deep-copied.
        momentum: the weight of the new value, in (0, 1).
        interval: average every ``interval`` updates.
        device: where to keep the averages (None: beside the model's weights).
        update_buffers: also average the floating-point buffers.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        momentum = _check_momentum(momentum)
        super().__init__(model, interval, device, update_buffers)
        self.momentum = momentum

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: Tensor) -> None:
        """``avg = (1 - w) * avg + w * src`` with ``w`` from :meth:`_lerp_weight`."""
        averaged_param.lerp_(source_param, self._lerp_weight(int(steps)))

    def _lerp_weight(self, steps: int) -> float:
        return self.momentum


@MODELS.register_module()
class MomentumAnnealingEMA(ExponentialMovingAverage):
    """EMA whose weight of the new value starts large and anneals to ``momentum``:
    ``w = max(momentum, gamma / (gamma + steps))``.

    Args:
        model: the model to average; it is deep-copied.
        momentum: the final weight of the new value, in (0, 1).
        gamma: how slowly the weight anneals (> 0). Default 100.
        interval: average every ``interval`` updates.
        device: where to keep the averages (None: beside the model's weights).
        update_buffers: also average the floating-point buffers.
    """

    def __init__(
        self,
        model: nn.Module,
        momentum: float = 0.0002,
        gamma: int = 100,
        interval: int = 1,
        device: torch.device | str | None = None,
        update_buffers: bool = False,
    ) -> None:
        _check_gamma(gamma)
        super().__init__(model, momentum=momentum, interval=interval, device=device, update_buffers=update_buffers)
        self.gamma = gamma

    def _lerp_weight(self, steps: int) -> float:
        return max(self.momentum, self.gamma / (self.gamma + steps))


# The avg_func implementations that are `lerp_` with `_lerp_weight`: a subclass that
# overrides avg_func gets its own called per tensor, as in the reference.
_LERP_AVG_FUNCS = frozenset({StochasticWeightAverage.avg_func, ExponentialMovingAverage.avg_func})


def _uses_lerp(model: BaseAveragedModel) -> bool:
    return type(model).avg_func in _LERP_AVG_FUNCS
