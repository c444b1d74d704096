"""`DefaultOptimWrapperConstructor`: turns an ``optim_wrapper`` config and a model into an
optimizer wrapper, with per-parameter learning rates and weight decays from ``paramwise_cfg``.

The rules (see DESIGN.md, "Constructor"):

* Without ``paramwise_cfg`` the optimizer gets ``model.parameters()`` as a single group.
* With it, every trainable parameter gets its own group, named ``prefix.name``; frozen
  parameters are left out.
* A ``custom_keys`` entry whose key is a substring of the name wins over every other rule;
  the longest key is tried first, equal lengths in alphabetical order, and all entries of
  the matched dict are copied into the group.
* Otherwise ``lr_mult`` and ``decay_mult`` scale everything, ``bias_lr_mult`` scales biases
  outside norm layers and deformable convs, ``dcn_offset_lr_mult`` scales the ``conv_offset``
  layer of a deformable conv, and the weight decay takes the first rule whose option is set
  in the chain norm -> bias -> depthwise conv -> 1-D ("flat") parameter. Multipliers that
  apply together multiply.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from minirunner.logging import print_log
from minirunner.registry import (
    MODEL_WRAPPERS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    config_key,
)
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .optimizer_checks import build_optimizer, check_optimizer_numbers
from .paramwise_checks import (
    PARAMWISE_KEYS,
    check_paramwise_cfg,
    missing_optimizer_message,
    optimizer_class,
    signature_default,
)

# _BatchNorm covers BatchNorm1d/2d/3d, their lazy forms and SyncBatchNorm.
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def is_norm_layer(module: nn.Module) -> bool:
    """True for BatchNorm (incl. SyncBatchNorm), InstanceNorm, GroupNorm and LayerNorm."""
    return isinstance(module, NORM_LAYERS)


def is_depthwise_conv(module: nn.Module) -> bool:
    """True for an ``nn.Conv2d`` with ``in_channels == groups``.

    This is the reference's test, so ``Conv2d(1, C)`` (one input channel, one group) counts
    as depthwise too.
    """
    return isinstance(module, nn.Conv2d) and module.in_channels == module.groups


def is_deformable_conv(module: nn.Module) -> bool:
    """True when the module's class, or one of its bases, is a deformable convolution.

    Recognised by class name (``DeformConv2d``, ``ModulatedDeformConv2d``, mmcv's
    ``DeformConv2dPack``...), so neither mmcv nor torchvision has to be imported to know.
    """
    return any("DeformConv" in cls.__name__ for cls in type(module).__mro__)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the model inside a (Distributed)DataParallel or a registered model wrapper.

    Only real wrappers are unwrapped: a model that merely has an attribute called
    ``module`` is left alone.
    """
    wrapper_types: tuple[type, ...] = (
        nn.parallel.DistributedDataParallel,
        nn.DataParallel,
        *(cls for cls in MODEL_WRAPPERS.module_dict.values() if inspect.isclass(cls)),
    )
    while isinstance(model, wrapper_types) and isinstance(
        getattr(model, "module", None), nn.Module
    ):
        model = model.module
    return model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DefaultOptimWrapperConstructor:
    """Build an optimizer wrapper for a model from an ``optim_wrapper`` config.

    Args:
        optim_wrapper_cfg: the ``optim_wrapper`` config without ``constructor`` and
            ``paramwise_cfg``: ``optimizer=dict(type=..., lr=..., ...)`` plus the wrapper's
            own arguments (``type``, default ``'OptimWrapper'``; ``clip_grad``,
            ``accumulative_counts``...).
        paramwise_cfg: per-parameter options; see the module docstring and DESIGN.md.
            Its keys are :data:`PARAMWISE_KEYS`.

    Attributes that subclasses use: ``optim_wrapper_cfg`` (without ``optimizer``),
    ``optimizer_cfg``, ``paramwise_cfg`` (a dict, ``{}`` when not given), ``base_lr`` (the
    optimizer's ``lr``, or its class default when the config has none) and ``base_wd``
    (the optimizer's ``weight_decay``, None when the config has none).

    Subclasses customise the groups by overriding :meth:`add_params`. The default
    constructor rejects unknown ``paramwise_cfg`` keys; a subclass that overrides
    ``add_params`` is not checked (it may read keys of its own), and a subclass that sets
    ``extra_paramwise_keys = ('my_key', ...)`` is checked against the default keys plus
    those.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
        >>> constructor = DefaultOptimWrapperConstructor(
        ...     dict(optimizer=dict(type='SGD', lr=0.1, weight_decay=1e-4)),
        ...     paramwise_cfg=dict(norm_decay_mult=0.0))
        >>> optim_wrapper = constructor(model)  # doctest: +SKIP
        >>> [g.get('weight_decay') for g in optim_wrapper.optimizer.param_groups]  # doctest: +SKIP
        [0.0001, 0.0001, 0.0, 0.0]
    """

    #: Extra ``paramwise_cfg`` keys a subclass accepts; None means "not declared".
    extra_paramwise_keys: tuple[str, ...] | None = None
    #: Where this constructor's config sits in the full config; used in warnings, which
    #: cannot be re-prefixed on their way up like a ConfigError.
    cfg_path: str = "optim_wrapper"

    def __init__(self, optim_wrapper_cfg: Mapping, paramwise_cfg: Mapping | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, Mapping):
            raise ConfigError(
                f"the optim wrapper config must be a dict such as "
                f"dict(optimizer=dict(type='SGD', lr=0.01)), got "
                f"{type(optim_wrapper_cfg).__name__} {optim_wrapper_cfg!r}"
            )
        if "optimizer" not in optim_wrapper_cfg:
            raise ConfigError(missing_optimizer_message(optim_wrapper_cfg), key="optimizer")
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        optimizer_cfg = self.optim_wrapper_cfg.pop("optimizer")
        if not isinstance(optimizer_cfg, Mapping):
            raise ConfigError(
                f"must be a dict such as dict(type='SGD', lr=0.01), got "
                f"{type(optimizer_cfg).__name__} {optimizer_cfg!r}",
                key="optimizer",
            )
        self.optimizer_cfg = dict(optimizer_cfg)
        # Before base_lr and base_wd are read: the multipliers compute with them.
        check_optimizer_numbers(self.optimizer_cfg)
        if paramwise_cfg is not None and not isinstance(paramwise_cfg, Mapping):
            raise ConfigError(
                f"must be a dict such as dict(norm_decay_mult=0.0) or None, got "
                f"{type(paramwise_cfg).__name__} {paramwise_cfg!r}",
                key="paramwise_cfg",
            )
        self.paramwise_cfg: dict = {} if paramwise_cfg is None else dict(paramwise_cfg)
        self.base_lr = self.optimizer_cfg.get("lr", None)
        if self.base_lr is None:
            # The multipliers need a number; torch's own default is what the optimizer
            # would use anyway.
            self.base_lr = signature_default(optimizer_class(self.optimizer_cfg), "lr")
        self.base_wd = self.optimizer_cfg.get("weight_decay", None)
        self._dedup: dict[str, Any] | None = None
        self._validate_cfg()

    def _validate_cfg(self) -> None:
        accepted: list[str] | None = None
        # A subclass with its own add_params may read keys of its own, so only a declared
        # list (or the default rules) lets the keys be checked.
        if type(self).extra_paramwise_keys is not None:
            accepted = [*PARAMWISE_KEYS, *type(self).extra_paramwise_keys]
        elif type(self).add_params is DefaultOptimWrapperConstructor.add_params:
            accepted = list(PARAMWISE_KEYS)
        check_paramwise_cfg(
            self.paramwise_cfg,
            self.optimizer_cfg,
            accepted_keys=accepted,
            base_lr=self.base_lr,
            base_wd=self.base_wd,
        )

    # ------------------------------------------------------------------ param groups
    def add_params(
        self,
        params: list[dict],
        module: nn.Module,
        prefix: str = "",
        is_dcn_module: int | float | None = None,
    ) -> None:
        """Append one param group per trainable parameter of ``module`` (recursively).

        Args:
            params: the list of param groups, extended in place.
            module: the module whose parameters (and children's) are added.
            prefix: the module's name in the model (``''`` for the model itself).
            is_dcn_module: truthy when ``module``'s parent is a deformable convolution;
                its ``conv_offset`` child then gets ``dcn_offset_lr_mult``.
        """
        cfg = self.paramwise_cfg
        custom_keys = cfg.get("custom_keys") or {}
        # Longest key first; equal lengths in alphabetical order.
        sorted_keys = sorted(custom_keys, key=lambda key: (-len(key), key))
        lr_mult = cfg.get("lr_mult")
        decay_mult = cfg.get("decay_mult")
        bias_lr_mult = cfg.get("bias_lr_mult")
        bias_decay_mult = cfg.get("bias_decay_mult")
        norm_decay_mult = cfg.get("norm_decay_mult")
        dwconv_decay_mult = cfg.get("dwconv_decay_mult")
        flat_decay_mult = cfg.get("flat_decay_mult")
        dcn_offset_lr_mult = cfg.get("dcn_offset_lr_mult")
        bypass_duplicate = cfg.get("bypass_duplicate", False)

        is_norm = is_norm_layer(module)
        is_dwconv = is_depthwise_conv(module)
        is_dcn_offset = (
            bool(is_dcn_module) and "conv_offset" in prefix and isinstance(module, nn.Conv2d)
        )
        seen = self._seen_params(params)

        for name, param in module.named_parameters(recurse=False):
            full_name = f"{prefix}.{name}" if prefix else name
            if not param.requires_grad:
                continue
            if id(param) in seen:
                first = seen[id(param)] or "a parameter already in the param groups"
                if not bypass_duplicate:
                    raise ConfigError(
                        f"parameter {full_name!r} is the same tensor as {first!r} (it is "
                        "shared by two modules), and a parameter can be in only one param "
                        "group. Set bypass_duplicate=True in paramwise_cfg to keep its first "
                        "occurrence and skip the others, or stop sharing it.",
                        key="paramwise_cfg",
                    )
                print_log(
                    f"{self.cfg_path}.paramwise_cfg.bypass_duplicate: {full_name!r} is the "
                    f"same parameter as {first!r}; it is skipped (the optimizer updates it "
                    f"once, with the options of {first!r}).",
                    logger="current",
                    level=logging.WARNING,
                )
                continue

            group: dict[str, Any] = {"params": [param]}
            custom_key = next((key for key in sorted_keys if key in full_name), None)
            if custom_key is not None:
                options = custom_keys[custom_key]
                group["lr"] = self.base_lr * options.get("lr_mult", 1.0)
                if self.base_wd is not None:
                    group["weight_decay"] = self.base_wd * options.get("decay_mult", 1.0)
                for key, value in options.items():
                    group[key] = value
            else:
                lr = None
                if lr_mult is not None:
                    lr = self.base_lr * lr_mult
                if bias_lr_mult is not None and name == "bias" and not (is_norm or is_dcn_module):
                    lr = (self.base_lr if lr is None else lr) * bias_lr_mult
                if dcn_offset_lr_mult is not None and is_dcn_offset:
                    lr = (self.base_lr if lr is None else lr) * dcn_offset_lr_mult
                if lr is not None:
                    group["lr"] = lr

                if self.base_wd is not None:
                    weight_decay = None
                    if decay_mult is not None:
                        weight_decay = self.base_wd * decay_mult
                    if is_norm and norm_decay_mult is not None:
                        rule_mult = norm_decay_mult
                    elif name == "bias" and not is_dcn_module and bias_decay_mult is not None:
                        rule_mult = bias_decay_mult
                    elif is_dwconv and dwconv_decay_mult is not None:
                        rule_mult = dwconv_decay_mult
                    elif param.ndim == 1 and not is_dcn_module and flat_decay_mult is not None:
                        rule_mult = flat_decay_mult
                    else:
                        rule_mult = None
                    if rule_mult is not None:
                        weight_decay = (
                            self.base_wd if weight_decay is None else weight_decay
                        ) * rule_mult
                    if weight_decay is not None:
                        group["weight_decay"] = weight_decay

            params.append(group)
            seen[id(param)] = full_name
            self._dedup["scanned"] = len(params)
            for key, value in group.items():
                if key != "params":
                    print_log(f"paramwise_options -- {full_name}:{key}={value}", logger="current")

        child_is_dcn = is_deformable_conv(module)
        for child_name, child in module.named_children():
            child_prefix = f"{prefix}.{child_name}" if prefix else child_name
            self.add_params(params, child, prefix=child_prefix, is_dcn_module=child_is_dcn)

    def _seen_params(self, params: list[dict]) -> dict[int, str | None]:
        """Parameters already in ``params``, by id, with the name they were added under.

        Kept incrementally across the recursive calls, so finding duplicates stays linear;
        groups that a subclass appended itself are picked up (without a name).
        """
        state = self._dedup
        if state is None or state["params"] is not params:
            state = self._dedup = {"params": params, "names": {}, "scanned": 0}
        names = state["names"]
        for group in params[state["scanned"]:]:
            for param in group["params"]:
                names.setdefault(id(param), None)
        state["scanned"] = len(params)
        return names

    # ------------------------------------------------------------------ build
    def __call__(self, model: nn.Module) -> Any:
        """Build the optimizer over ``model``'s parameters and wrap it.

        Returns:
            the wrapper built from ``optim_wrapper_cfg`` (type ``'OptimWrapper'`` unless
            given) around the optimizer.
        """
        model = unwrap_model(model)
        optim_wrapper_cfg = dict(self.optim_wrapper_cfg)
        optim_wrapper_cfg.setdefault("type", "OptimWrapper")
        optimizer_cfg = dict(self.optimizer_cfg)
        if not self.paramwise_cfg:
            optimizer_cfg["params"] = model.parameters()
        else:
            params: list[dict] = []
            try:
                self.add_params(params, model)
            finally:
                self._dedup = None  # drop the references to the model's parameters
            self._warn_unmatched_custom_keys(model)
            optimizer_cfg["params"] = params
        with config_key("optimizer"):
            optimizer = build_optimizer(optimizer_cfg)
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))

    def _warn_unmatched_custom_keys(self, model: nn.Module) -> None:
        custom_keys = self.paramwise_cfg.get("custom_keys") or {}
        if not custom_keys:
            return
        names = [name for name, _ in model.named_parameters(remove_duplicate=False)]
        # Module paths too, so "backbome" suggests "backbone" rather than a weight's name.
        prefixes: set[str] = set()
        for name in names:
            parts = name.split(".")
            for end in range(1, len(parts) + 1):
                prefixes.add(".".join(parts[:end]))
        for key in custom_keys:
            if any(key in name for name in names):
                continue
            hint = did_you_mean(key, sorted(prefixes))
            print_log(
                f"{self.cfg_path}.paramwise_cfg.custom_keys: {key!r} matches no parameter "
                f"name, so it has no effect.{hint} Keys match any part of names such as "
                f"{quoted_list(names[:3])}; fix or remove the key.",
                logger="current",
                level=logging.WARNING,
            )


__all__ = [
    "DefaultOptimWrapperConstructor",
    "NORM_LAYERS",
    "is_deformable_conv",
    "is_depthwise_conv",
    "is_norm_layer",
    "unwrap_model",
]
