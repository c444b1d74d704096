"""`MultiOptimWrapperConstructor`: one optimizer per submodule (GANs and the like).

The config maps submodule names to full optim wrapper configs, each with its own
optimizer, wrapper type, ``paramwise_cfg`` and ``constructor``::

    optim_wrapper = dict(
        generator=dict(optimizer=dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))),
        discriminator=dict(
            optimizer=dict(type='SGD', lr=0.01, weight_decay=1e-4),
            paramwise_cfg=dict(norm_decay_mult=0.0)),
    )

``build_optim_wrapper`` selects this constructor by itself for such a config (no
top-level ``optimizer`` or ``type``, every value a dict with an ``optimizer``); writing
``constructor='MultiOptimWrapperConstructor'`` does the same explicitly. The result is an
``OptimWrapperDict`` keyed by the same names, so ``get_lr()`` reports ``generator.lr`` and
state dicts are keyed by name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn

from minirunner.logging import print_log
from minirunner.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, config_key
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .builder import build_constructor
from .default_constructor import unwrap_model


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` with one optimizer wrapper per named submodule.

    Args:
        optim_wrapper_cfg: ``{submodule name: optim wrapper config}``. A name may be a
            dotted path (``'backbone.stem'``). Each config may hold its own
            ``constructor`` and ``paramwise_cfg``.
        paramwise_cfg: must be None; give each optimizer its own ``paramwise_cfg``.

    The submodules' parameters must not overlap (a parameter stepped by two optimizers is
    almost always a mistake); trainable parameters that no optimizer covers are reported
    with a warning.

    Example:
        >>> class GAN(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.generator = nn.Linear(4, 4)
        ...         self.discriminator = nn.Linear(4, 1)
        >>> constructor = MultiOptimWrapperConstructor(dict(
        ...     generator=dict(optimizer=dict(type='Adam', lr=2e-4)),
        ...     discriminator=dict(optimizer=dict(type='SGD', lr=0.01))))
        >>> optim_wrappers = constructor(GAN())  # doctest: +SKIP
        >>> optim_wrappers.get_lr()  # doctest: +SKIP
        {'generator.lr': [0.0002], 'discriminator.lr': [0.01]}
    """

    def __init__(self, optim_wrapper_cfg: Mapping, paramwise_cfg: Mapping | None = None) -> None:
        if not isinstance(optim_wrapper_cfg, Mapping) or not optim_wrapper_cfg:
            raise ConfigError(
                "with several optimizers the optim wrapper config maps submodule names to "
                "optim wrapper configs, such as dict(generator=dict(optimizer=...), "
                f"discriminator=dict(optimizer=...)); got {optim_wrapper_cfg!r}"
            )
        if paramwise_cfg:
            raise ConfigError(
                "with several optimizers each one takes its own paramwise_cfg; move it into "
                "the config of the submodule it is for, e.g. "
                "optim_wrapper.generator.paramwise_cfg",
                key="paramwise_cfg",
            )
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)
        self.constructors: dict[str, Any] = {}
        for name, sub_cfg in self.optim_wrapper_cfg.items():
            with config_key(str(name)):
                if not isinstance(sub_cfg, Mapping) or "optimizer" not in sub_cfg:
                    raise ConfigError(
                        f"with several optimizers every key must be a submodule name holding "
                        f"a full optim wrapper config such as dict(optimizer=dict(type='SGD', "
                        f"lr=0.01)), got {sub_cfg!r}; move wrapper options such as clip_grad "
                        f"into each submodule's config"
                    )
                sub_cfg = dict(sub_cfg)
                constructor = sub_cfg.pop("constructor", None)
                sub_paramwise_cfg = sub_cfg.pop("paramwise_cfg", None)
                built = build_constructor(constructor, sub_cfg, sub_paramwise_cfg)
            if hasattr(built, "cfg_path"):
                built.cfg_path = f"optim_wrapper.{name}"
            self.constructors[name] = built

    def __call__(self, model: nn.Module) -> Any:
        """Build each submodule's wrapper and return them as an ``OptimWrapperDict``."""
        model = unwrap_model(model)
        wrappers: dict[str, Any] = {}
        owner: dict[int, str] = {}
        for name, constructor in self.constructors.items():
            submodule = _submodule(model, name)
            for param in submodule.parameters():
                if id(param) in owner:
                    raise ConfigError(
                        f"the parameters of {name!r} overlap those of {owner[id(param)]!r}, "
                        "so two optimizers would update the same tensors; give each "
                        "optimizer a disjoint submodule",
                        key=name,
                    )
                owner[id(param)] = name
            with config_key(name):
                wrappers[name] = constructor(submodule)
        uncovered = [
            param_name
            for param_name, param in model.named_parameters()
            if param.requires_grad and id(param) not in owner
        ]
        if uncovered:
            print_log(
                f"optim_wrapper: {len(uncovered)} trainable parameter(s) belong to no "
                f"optimizer and will not be updated: {quoted_list(uncovered, limit=5)}. "
                "Add an optim wrapper config for their submodule, or freeze them.",
                logger="current",
                level=logging.WARNING,
            )
        return OPTIM_WRAPPERS.build(dict(type="OptimWrapperDict", **wrappers))


def _submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        children = [child for child, _ in model.named_children()]
        raise ConfigError(
            f"the model ({type(model).__name__}) has no submodule {name!r}."
            f"{did_you_mean(name, children)} With several optimizers every key names a "
            "submodule; the model's are "
            f"{quoted_list(children) or 'none'}.",
            key=name,
        ) from None


__all__ = ["MultiOptimWrapperConstructor"]
