"""Checks of an optim wrapper config's ``paramwise_cfg``, run before any parameter is grouped,
so a typo or a multiplier with nothing to multiply fails with the key and the fix.

Keys in the errors are relative to the optim wrapper config (``paramwise_cfg.norm_decay_mul``);
the caller adds the outer path (``optim_wrapper.``) with ``config_key``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from minirunner.registry import OPTIMIZERS
from minirunner.utils import ConfigError, did_you_mean, quoted_list

#: Every key of ``paramwise_cfg`` that ``DefaultOptimWrapperConstructor`` understands.
PARAMWISE_KEYS: tuple[str, ...] = (
    "custom_keys",
    "lr_mult",
    "decay_mult",
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "flat_decay_mult",
    "dwconv_decay_mult",
    "dcn_offset_lr_mult",
    "bypass_duplicate",
)
MULT_KEYS = tuple(key for key in PARAMWISE_KEYS if key.endswith("_mult"))
DECAY_KEYS = tuple(key for key in MULT_KEYS if key.endswith("decay_mult"))
LR_KEYS = tuple(key for key in MULT_KEYS if key.endswith("lr_mult"))


def optimizer_class(optimizer_cfg: Mapping) -> type | None:
    """The optimizer class an ``optimizer`` config names, or None if it cannot be resolved."""
    optimizer_type = optimizer_cfg.get("type")
    if isinstance(optimizer_type, str):
        return OPTIMIZERS.get(optimizer_type)
    return optimizer_type if inspect.isclass(optimizer_type) else None


def signature_default(cls: type | None, name: str) -> Any:
    """The default of ``cls``'s argument ``name`` (``lr`` of an optimizer), or None."""
    if cls is None:
        return None
    try:
        parameter = inspect.signature(cls).parameters.get(name)
    except (TypeError, ValueError):
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _argument_names(cls: type | None) -> set[str]:
    if cls is None:
        return set()
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


def check_paramwise_cfg(
    paramwise_cfg: Mapping,
    optimizer_cfg: Mapping,
    *,
    accepted_keys: Sequence[str] | None,
    base_lr: Any,
    base_wd: Any,
) -> None:
    """Raise a :class:`ConfigError` for anything in ``paramwise_cfg`` that cannot work.

    Args:
        paramwise_cfg: the options.
        optimizer_cfg: the ``optimizer`` config they apply to.
        accepted_keys: the keys allowed in ``paramwise_cfg``; None skips the key check
            (a constructor subclass with rules of its own).
        base_lr: the learning rate the lr multipliers apply to (None: there is none).
        base_wd: the weight decay the decay multipliers apply to (None: not configured).
    """
    if "paramwise_cfg" in optimizer_cfg:
        raise ConfigError(
            "paramwise_cfg belongs next to optimizer, not inside it; move it up one level: "
            "optim_wrapper=dict(optimizer=dict(type=..., lr=...), paramwise_cfg=dict(...))",
            key="optimizer.paramwise_cfg",
        )
    if accepted_keys is not None:
        for key in paramwise_cfg:
            if key not in accepted_keys:
                raise ConfigError(
                    f"unknown option {key!r}.{did_you_mean(str(key), accepted_keys)} The "
                    f"options are {quoted_list(accepted_keys)}; rename or remove it.",
                    key=f"paramwise_cfg.{key}",
                )
    for key in MULT_KEYS:
        if key in paramwise_cfg and not _is_number(paramwise_cfg[key]):
            raise ConfigError(
                f"must be a number (a multiplier such as 0.1), got {paramwise_cfg[key]!r}",
                key=f"paramwise_cfg.{key}",
            )
    bypass_duplicate = paramwise_cfg.get("bypass_duplicate", False)
    if not isinstance(bypass_duplicate, bool):
        raise ConfigError(
            f"must be True or False, got {bypass_duplicate!r}",
            key="paramwise_cfg.bypass_duplicate",
        )
    cls = optimizer_class(optimizer_cfg)
    for key in DECAY_KEYS:
        if key in paramwise_cfg and base_wd is None:
            raise ConfigError(_no_weight_decay(key, cls), key=f"paramwise_cfg.{key}")
    if "custom_keys" in paramwise_cfg:
        _check_custom_keys(paramwise_cfg["custom_keys"], cls, base_wd)
    uses_lr = any(key in paramwise_cfg for key in LR_KEYS) or paramwise_cfg.get("custom_keys")
    if uses_lr and base_lr is None:
        raise ConfigError(
            "the optimizer config has no lr and its class has no default one, but "
            "paramwise_cfg multiplies the learning rate; add lr=<value> to optimizer",
            key="optimizer.lr",
        )


def _check_custom_keys(custom_keys: Any, cls: type | None, base_wd: Any) -> None:
    if not isinstance(custom_keys, Mapping):
        raise ConfigError(
            "must be a dict that maps a substring of parameter names to its options, such as "
            f"{{'backbone': dict(lr_mult=0.1)}}, got {type(custom_keys).__name__} {custom_keys!r}",
            key="paramwise_cfg.custom_keys",
        )
    optimizer_args = _argument_names(cls)
    for name, options in custom_keys.items():
        path = f"paramwise_cfg.custom_keys[{name!r}]"
        if not isinstance(name, str) or not name:
            raise ConfigError(
                f"keys are non-empty substrings of parameter names, got {name!r}",
                key="paramwise_cfg.custom_keys",
            )
        if not isinstance(options, Mapping):
            fix = ""
            if _is_number(options):
                fix = (
                    f"; write {{{name!r}: dict(lr_mult={options!r})}} for a learning-rate "
                    "multiplier"
                )
            raise ConfigError(
                "must be a dict of options such as dict(lr_mult=0.1, decay_mult=0.0), got "
                f"{type(options).__name__} {options!r}{fix}",
                key=path,
            )
        for option, value in options.items():
            if option in ("lr_mult", "decay_mult"):
                if not _is_number(value):
                    raise ConfigError(
                        f"must be a number (a multiplier such as 0.1), got {value!r}",
                        key=f"{path}.{option}",
                    )
                continue
            # Other entries are copied into the param group (momentum, betas...); a near
            # miss of a multiplier would be silently ignored by torch.
            hint = did_you_mean(str(option), ["lr_mult", "decay_mult"])
            if hint and str(option) not in optimizer_args:
                raise ConfigError(
                    f"{option!r} is not an option the constructor reads, and the optimizer "
                    f"would ignore it.{hint} Rename or remove it.",
                    key=f"{path}.{option}",
                )
        if "decay_mult" in options and base_wd is None:
            raise ConfigError(_no_weight_decay("decay_mult", cls), key=f"{path}.decay_mult")


def _no_weight_decay(key: str, cls: type | None) -> str:
    default = signature_default(cls, "weight_decay")
    note = ""
    if cls is not None and default is not None:
        note = (
            f" ({cls.__name__} would use its default weight_decay={default} for every "
            f"parameter, unaffected by {key})"
        )
    return (
        f"{key} multiplies the optimizer's weight_decay, but the optimizer config sets "
        f"none{note}. Add weight_decay=<value> to optimizer=dict(...), or remove {key}."
    )


def missing_optimizer_message(cfg: Mapping) -> str:
    """Explain a missing ``optimizer`` key, spotting a half-written multi-optimizer config."""
    nested = [
        key for key, value in cfg.items() if isinstance(value, Mapping) and "optimizer" in value
    ]
    if nested:
        others = [key for key in cfg if key not in nested]
        return (
            "the config has no 'optimizer' key. It looks like one optimizer per submodule "
            f"({quoted_list(nested)}); then every key must be a submodule name holding a full "
            f"optim wrapper config, so move or remove {quoted_list(others) or 'the other keys'}, "
            "or set constructor='MultiOptimWrapperConstructor'."
        )
    return (
        "the config has no 'optimizer' key; add optimizer=dict(type='SGD', lr=0.01) (or "
        "another optimizer) to it"
    )


__all__ = [
    "PARAMWISE_KEYS", "check_paramwise_cfg", "missing_optimizer_message", "optimizer_class",
    "signature_default",
]
