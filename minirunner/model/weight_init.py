"""Weight initialisation: the functional helpers, the ``WEIGHT_INITIALIZERS`` registry, the
initializers an ``init_cfg`` names (``Constant``, ``Xavier``, ``Normal``, ``TruncNormal``,
``Uniform``, ``Kaiming``, ``Caffe2Xavier``; ``Pretrained`` lives in :mod:`.pretrained_init`),
and :func:`initialize`, which applies an ``init_cfg`` to a module.

An initializer touches a submodule when the submodule's class name, or the name of one of
its direct base classes, is in the initializer's ``layer`` list (``layer='Conv2d'``). An
``override=dict(name='head', ...)`` initialises the whole child ``head`` instead, whatever
its layer types.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

# The root registry, so that child registries of downstream projects find these names.
from minirunner.registry import WEIGHT_INITIALIZERS
from minirunner.utils import ConfigError

_DISTRIBUTIONS = ("normal", "uniform")


class InitConfigTypeError(ConfigError, TypeError):
    """A value of the wrong type in an ``init_cfg`` (a ``TypeError``, as the reference raises)."""


def _has(module: nn.Module, name: str) -> bool:
    return getattr(module, name, None) is not None


def _fill_bias(module: nn.Module, bias: float) -> None:
    if _has(module, "bias"):
        nn.init.constant_(module.bias, bias)


def _check_distribution(distribution: str) -> None:
    if distribution not in _DISTRIBUTIONS:
        raise ConfigError(
            f"must be 'normal' or 'uniform', got {distribution!r}", key="distribution"
        )


def constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    """Fill ``module.weight`` with ``val`` and ``module.bias`` with ``bias`` (when present).

    Example:
        >>> layer = nn.Linear(2, 3)
        >>> constant_init(layer, 1.0, bias=0.5)
        >>> layer.weight.sum().item(), layer.bias[0].item()
        (6.0, 0.5)
    """
    if _has(module, "weight"):
        nn.init.constant_(module.weight, val)
    _fill_bias(module, bias)


def xavier_init(
    module: nn.Module, gain: float = 1, bias: float = 0, distribution: str = "normal"
) -> None:
    """Glorot initialisation of ``module.weight`` (``'normal'`` or ``'uniform'``); bias filled."""
    _check_distribution(distribution)
    if _has(module, "weight"):
        if distribution == "uniform":
            nn.init.xavier_uniform_(module.weight, gain=gain)
        else:
            nn.init.xavier_normal_(module.weight, gain=gain)
    _fill_bias(module, bias)


def normal_init(module: nn.Module, mean: float = 0, std: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from N(mean, std^2); fill the bias with ``bias``."""
    if _has(module, "weight"):
        nn.init.normal_(module.weight, mean, std)
    _fill_bias(module, bias)


def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> Tensor:
    """Fill ``tensor`` from N(mean, std^2) truncated to ``[a, b]`` (in place; returns it)."""
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)


def trunc_normal_init(
    module: nn.Module,
    mean: float = 0,
    std: float = 1,
    a: float = -2,
    b: float = 2,
    bias: float = 0,
) -> None:
    """Draw ``module.weight`` from a normal distribution truncated to ``[a, b]``; fill the bias."""
    if _has(module, "weight"):
        trunc_normal_(module.weight, mean, std, a, b)
    _fill_bias(module, bias)


def uniform_init(module: nn.Module, a: float = 0, b: float = 1, bias: float = 0) -> None:
    """Draw ``module.weight`` from U(a, b); fill the bias with ``bias``."""
    if _has(module, "weight"):
        nn.init.uniform_(module.weight, a, b)
    _fill_bias(module, bias)


def kaiming_init(
    module: nn.Module,
    a: float = 0,
    mode: str = "fan_out",
    nonlinearity: str = "relu",
    bias: float = 0,
    distribution: str = "normal",
) -> None:
    """He initialisation of ``module.weight`` (defaults: ``fan_out``, ReLU, normal); bias filled."""
    _check_distribution(distribution)
    if _has(module, "weight"):
        init = nn.init.kaiming_uniform_ if distribution == "uniform" else nn.init.kaiming_normal_
        init(module.weight, a=a, mode=mode, nonlinearity=nonlinearity)
    _fill_bias(module, bias)


def caffe2_xavier_init(module: nn.Module, bias: float = 0) -> None:
    """Caffe2's ``XavierFill``: Kaiming uniform with ``a=1``, ``fan_in``, leaky ReLU."""
    kaiming_init(
        module, a=1, mode="fan_in", nonlinearity="leaky_relu", bias=bias, distribution="uniform"
    )


def bias_init_with_prob(prior_prob: float) -> float:
    """The bias whose sigmoid is ``prior_prob``: ``-log((1 - p) / p)`` (focal-loss heads).

    Example:
        >>> round(bias_init_with_prob(0.01), 4)
        -4.5951
    """
    if not 0 < prior_prob < 1:
        raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob!r}")
    return float(-math.log((1 - prior_prob) / prior_prob))


class BaseInit:
    """Common arguments of the layer-selecting initializers.

    Args:
        bias: the value every selected bias is filled with.
        bias_prob: when given, the bias is ``bias_init_with_prob(bias_prob)`` instead.
        layer: the layer type name(s) to initialise (``'Conv2d'`` or ``['Conv2d',
            'Linear']``); a submodule matches by its class name or a direct base's name.
            None selects nothing unless the initializer is applied to a whole module
            through ``override``.
    """

    def __init__(
        self,
        *,
        bias: float = 0,
        bias_prob: float | None = None,
        layer: str | Sequence[str] | None = None,
    ) -> None:
        self.wholemodule = False
        if isinstance(bias, bool) or not isinstance(bias, (int, float)):
            raise InitConfigTypeError(f"must be a number, got {type(bias).__name__}", key="bias")
        if bias_prob is not None and not isinstance(bias_prob, float):
            raise InitConfigTypeError(
                f"must be a float such as 0.01, got {type(bias_prob).__name__}", key="bias_prob"
            )
        if layer is None:
            layer = []
        elif isinstance(layer, str):
            layer = [layer]
        elif not (isinstance(layer, (list, tuple)) and all(isinstance(n, str) for n in layer)):
            raise InitConfigTypeError(
                f"must be a layer type name or a list of them (e.g. 'Conv2d'), got {layer!r}",
                key="layer",
            )
        self.bias = bias_init_with_prob(bias_prob) if bias_prob is not None else bias
        self.layer = list(layer)

    def _init_one(self, module: nn.Module) -> None:
        raise NotImplementedError

    def _selects(self, module: nn.Module) -> bool:
        if self.wholemodule:
            return True
        cls = type(module)
        names = {cls.__name__, *(base.__name__ for base in cls.__bases__)}
        return not names.isdisjoint(self.layer)

    def __call__(self, module: nn.Module) -> None:
        """Initialise every selected submodule of ``module`` (itself included)."""
        if not self.wholemodule and not self.layer:
            return
        for submodule in module.modules():
            if self._selects(submodule):
                self._init_one(submodule)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "wholemodule")
        return f"{type(self).__name__}({fields})"


@WEIGHT_INITIALIZERS.register_module(name="Constant")
class ConstantInit(BaseInit):
    """Fill the selected layers' weights with ``val`` (and biases with ``bias``)."""

    def __init__(self, val: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.val = val

    def _init_one(self, module: nn.Module) -> None:
        constant_init(module, self.val, self.bias)


@WEIGHT_INITIALIZERS.register_module(name="Xavier")
class XavierInit(BaseInit):
    """Glorot initialisation (``gain``, ``distribution='normal'|'uniform'``)."""

    def __init__(self, gain: float = 1, distribution: str = "normal", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _check_distribution(distribution)
        self.gain = gain
        self.distribution = distribution

    def _init_one(self, module: nn.Module) -> None:
        xavier_init(module, self.gain, self.bias, self.distribution)


@WEIGHT_INITIALIZERS.register_module(name="Normal")
class NormalInit(BaseInit):
    """Weights drawn from N(mean, std^2)."""

    def __init__(self, mean: float = 0, std: float = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mean = mean
        self.std = std

    def _init_one(self, module: nn.Module) -> None:
        normal_init(module, self.mean, self.std, self.bias)


@WEIGHT_INITIALIZERS.register_module(name="TruncNormal")
class TruncNormalInit(BaseInit):
    """Weights drawn from N(mean, std^2) truncated to ``[a, b]``."""

    def __init__(
        self, mean: float = 0, std: float = 1, a: float = -2, b: float = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.mean = mean
        self.std = std
        self.a = a
        self.b = b

    def _init_one(self, module: nn.Module) -> None:
        trunc_normal_init(module, self.mean, self.std, self.a, self.b, self.bias)


@WEIGHT_INITIALIZERS.register_module(name="Uniform")
class UniformInit(BaseInit):
    """Weights drawn from U(a, b)."""

    def __init__(self, a: float = 0, b: float = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.a = a
        self.b = b

    def _init_one(self, module: nn.Module) -> None:
        uniform_init(module, self.a, self.b, self.bias)


@WEIGHT_INITIALIZERS.register_module(name="Kaiming")
class KaimingInit(BaseInit):
    """He initialisation (defaults ``a=0``, ``mode='fan_out'``, ``nonlinearity='relu'``,
    ``distribution='normal'``)."""

    def __init__(
        self,
        a: float = 0,
        mode: str = "fan_out",
        nonlinearity: str = "relu",
        distribution: str = "normal",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_distribution(distribution)
        self.a = a
        self.mode = mode
        self.nonlinearity = nonlinearity
        self.distribution = distribution

    def _init_one(self, module: nn.Module) -> None:
        kaiming_init(module, self.a, self.mode, self.nonlinearity, self.bias, self.distribution)


@WEIGHT_INITIALIZERS.register_module(name="Caffe2Xavier")
class Caffe2XavierInit(KaimingInit):
    """Caffe2's ``XavierFill`` (Kaiming uniform, ``a=1``, ``fan_in``, leaky ReLU)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            a=1, mode="fan_in", nonlinearity="leaky_relu", distribution="uniform", **kwargs
        )


def _apply(module: nn.Module, cfg: Mapping, wholemodule: bool = False) -> None:
    initializer = WEIGHT_INITIALIZERS.build(dict(cfg))
    # `override` initialises a whole named child, so no `layer` selects inside it.
    initializer.wholemodule = wholemodule
    initializer(module)


def _apply_override(module: nn.Module, override: Any, cfg: dict) -> None:
    if isinstance(override, Mapping):
        override = [override]
    if not isinstance(override, (list, tuple)):
        raise InitConfigTypeError(
            f"must be a dict or a list of dicts, got {type(override).__name__}", key="override"
        )
    for entry in override:
        entry = copy.deepcopy(dict(entry))
        name = entry.pop("name", None)
        if name is None:
            raise ConfigError(
                f"needs the key 'name' (the child module to initialise), got {entry}",
                key="override",
            )
        if not entry:
            # Only a name: initialise that child with the outer config's arguments.
            entry.update(cfg)
        elif "type" not in entry:
            raise ConfigError(
                f"for '{name}' has arguments but no 'type'; add type='...' or keep only name",
                key="override",
            )
        child = getattr(module, name, None)
        if not isinstance(child, nn.Module):
            raise ConfigError(
                f"names '{name}', but {type(module).__name__} has no submodule of that name",
                key="override.name",
            )
        _apply(child, entry, wholemodule=True)


def initialize(module: nn.Module, init_cfg: Mapping | Sequence[Mapping]) -> None:
    """Apply ``init_cfg`` (a dict or a list of dicts) to ``module``.

    Each config builds an initializer from ``WEIGHT_INITIALIZERS`` and applies it to the
    submodules its ``layer`` selects; its ``override`` (a dict or list of dicts with
    ``name``) then initialises each named child as a whole, with the override's own
    ``type`` and arguments, or with the outer config's when the override holds only ``name``.
    The configs are not changed.

    Example:
        >>> net = nn.Sequential(nn.Conv1d(3, 1, 3), nn.Linear(1, 2))
        >>> initialize(net, [dict(type='Constant', layer='Conv1d', val=1),
        ...                  dict(type='Constant', layer='Linear', val=2)])
        >>> net[0].weight.min().item(), net[1].weight.max().item()
        (1.0, 2.0)
    """
    if isinstance(init_cfg, Mapping):
        init_cfg = [init_cfg]
    if not isinstance(init_cfg, (list, tuple)):
        raise InitConfigTypeError(
            f"must be a dict or a list of dicts, got {type(init_cfg).__name__}", key="init_cfg"
        )
    for cfg in init_cfg:
        if not isinstance(cfg, Mapping):
            raise InitConfigTypeError(
                f"entries must be dicts, got {type(cfg).__name__}", key="init_cfg"
            )
        # A deep copy: one init_cfg is often shared by several blocks.
        cfg = copy.deepcopy(dict(cfg))
        override = cfg.pop("override", None)
        _apply(module, cfg)
        if override is not None:
            cfg.pop("layer", None)
            _apply_override(module, override, cfg)
