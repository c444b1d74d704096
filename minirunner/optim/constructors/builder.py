"""`build_optim_wrapper`: the one call that turns a model and an ``optim_wrapper`` config
into an optimizer wrapper (or an ``OptimWrapperDict`` for several optimizers)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from minirunner.registry import OPTIM_WRAPPER_CONSTRUCTORS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .default_constructor import unwrap_model

DEFAULT_CONSTRUCTOR = "DefaultOptimWrapperConstructor"
MULTI_CONSTRUCTOR = "MultiOptimWrapperConstructor"


def is_multi_optimizer_cfg(cfg: Mapping) -> bool:
    """True for a config that holds one full optim wrapper config per submodule.

    That is: no top-level ``optimizer`` or ``type``, and every value is a dict with an
    ``optimizer`` key, as in ``dict(generator=dict(optimizer=...), discriminator=dict(...))``.
    """
    if not cfg or "optimizer" in cfg or "type" in cfg:
        return False
    return all(isinstance(value, Mapping) and "optimizer" in value for value in cfg.values())


def build_constructor(
    constructor: Any,
    optim_wrapper_cfg: Mapping,
    paramwise_cfg: Mapping | None = None,
) -> Any:
    """Build the optim wrapper constructor that ``constructor`` names.

    Args:
        constructor: a registered name, ``dict(type=name, **extra_arguments)``, a class,
            or None for :class:`DefaultOptimWrapperConstructor`.
        optim_wrapper_cfg: the optim wrapper config, without ``constructor`` and
            ``paramwise_cfg``.
        paramwise_cfg: passed to the constructor as it is.

    Errors in the name are reported under the key ``constructor``; errors the constructor
    raises about the config keep their own keys (``paramwise_cfg.norm_decay_mul``).
    """
    if constructor is None:
        constructor = DEFAULT_CONSTRUCTOR
    extra: dict[str, Any] = {}
    if isinstance(constructor, Mapping):
        extra = dict(constructor)
        if "type" not in extra:
            raise ConfigError(
                f"a constructor dict needs a 'type' key, got {dict(constructor)!r}; write "
                f"constructor='{DEFAULT_CONSTRUCTOR}' or constructor=dict(type='MyConstructor')",
                key="constructor",
            )
        constructor = extra.pop("type")
    if isinstance(constructor, str):
        cls = OPTIM_WRAPPER_CONSTRUCTORS.get(constructor)
        if cls is None:
            known = OPTIM_WRAPPER_CONSTRUCTORS.known_names()
            raise ConfigError(
                f"{constructor!r} is not a registered optim wrapper constructor."
                f"{did_you_mean(constructor, known)} Registered: {quoted_list(known)}. "
                "Register yours with @OPTIM_WRAPPER_CONSTRUCTORS.register_module() and make "
                "sure its module is imported (custom_imports).",
                key="constructor",
            )
    elif inspect.isclass(constructor) or callable(constructor):
        cls = constructor
    else:
        raise ConfigError(
            f"must be a registered constructor name, dict(type=...) or a class, got "
            f"{constructor!r}",
            key="constructor",
        )
    return OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(type=cls, optim_wrapper_cfg=optim_wrapper_cfg, paramwise_cfg=paramwise_cfg, **extra)
    )


def build_optim_wrapper(model: nn.Module, cfg: Mapping) -> Any:
    """Build the optimizer wrapper for ``model`` from an ``optim_wrapper`` config.

    ``cfg`` is copied, never changed. ``constructor`` (default
    ``'DefaultOptimWrapperConstructor'``) and ``paramwise_cfg`` are taken out and given
    to the constructor; every other key (``optimizer``, ``type`` (default
    ``'OptimWrapper'``), ``clip_grad``, ``accumulative_counts``, ``loss_scale``,
    ``dtype``...) is the wrapper's. A model inside DistributedDataParallel (or another
    registered model wrapper) is unwrapped first.

    Several optimizers: a config without ``optimizer`` and ``type`` whose values are all
    full optim wrapper configs, keyed by submodule name, is built by
    :class:`MultiOptimWrapperConstructor` into an ``OptimWrapperDict`` (the same as
    writing ``constructor='MultiOptimWrapperConstructor'``).

    Errors name keys relative to ``cfg`` (``paramwise_cfg.norm_decay_mul``); the caller
    adds the outer path with ``config_key('optim_wrapper')``.

    Example:
        >>> model = nn.Linear(2, 2)
        >>> wrapper = build_optim_wrapper(model, dict(
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.9),
        ...     paramwise_cfg=dict(bias_lr_mult=2.0)))  # doctest: +SKIP
        >>> [g['lr'] for g in wrapper.optimizer.param_groups]  # doctest: +SKIP
        [0.01, 0.02]
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"the optim wrapper config must be a dict such as "
            f"dict(optimizer=dict(type='SGD', lr=0.01)), got {type(cfg).__name__} {cfg!r}"
        )
    optim_wrapper_cfg = dict(copy.deepcopy(cfg))
    constructor = optim_wrapper_cfg.pop("constructor", None)
    paramwise_cfg = optim_wrapper_cfg.pop("paramwise_cfg", None)
    if constructor is None and is_multi_optimizer_cfg(optim_wrapper_cfg):
        constructor = MULTI_CONSTRUCTOR
    optim_wrapper_constructor = build_constructor(constructor, optim_wrapper_cfg, paramwise_cfg)
    return optim_wrapper_constructor(unwrap_model(model))


__all__ = ["build_constructor", "build_optim_wrapper", "is_multi_optimizer_cfg"]
