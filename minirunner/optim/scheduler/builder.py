"""Building schedulers from configs: ``convert_to_iter_based`` and several optimizers.

:func:`build_scheduler_from_cfg` is the build function of the PARAM_SCHEDULERS registry
(installed when this package is imported), so ``PARAM_SCHEDULERS.build(cfg,
default_args=dict(optimizer=..., epoch_length=...))`` understands ``convert_to_iter_based``.
:func:`build_param_schedulers` turns a whole ``param_scheduler`` config (one config, a list,
or a dict of lists keyed by optimizer name) into scheduler objects, as the runner does.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from minirunner.logging import print_log
from minirunner.registry import PARAM_SCHEDULERS, Registry, build_from_cfg
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .param_scheduler import _ParamScheduler


def build_scheduler_from_cfg(
    cfg: Mapping,
    registry: Registry,
    default_args: Mapping | None = None,
) -> Any:
    """Build one scheduler from ``cfg``, converting epochs to iterations when asked.

    ``convert_to_iter_based=True`` (with ``by_epoch=True``) builds the iteration-based
    equivalent through the class's ``build_iter_from_epoch``, using ``epoch_length`` from
    ``cfg`` or ``default_args``. Without it, ``epoch_length`` is dropped and the class is
    built by :func:`~minirunner.registry.build_from_cfg`, with the same checks and errors.

    Example:
        >>> import torch
        >>> from minirunner.registry import PARAM_SCHEDULERS
        >>> import minirunner.optim.scheduler
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> s = PARAM_SCHEDULERS.build(
        ...     dict(type='LinearLR', start_factor=0.1, end=2, convert_to_iter_based=True),
        ...     default_args=dict(optimizer=opt, epoch_length=5))
        >>> s.end, s.by_epoch
        (10, False)
    """
    if not isinstance(cfg, Mapping):
        return build_from_cfg(cfg, registry, default_args)  # reports the bad config
    args = dict(cfg)
    defaults = dict(default_args or {})
    # Neither key is an argument of the scheduler classes; a key in cfg wins over default_args.
    default_convert = defaults.pop("convert_to_iter_based", False)
    convert = args.pop("convert_to_iter_based", default_convert)
    default_length = defaults.pop("epoch_length", None)
    epoch_length = args.pop("epoch_length", default_length)
    if not convert:
        return build_from_cfg(args, registry, defaults)

    merged = dict(defaults)
    merged.update(args)
    obj_type = merged.get("type")
    cls = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
    if cls is None or not callable(cls):
        return build_from_cfg(args, registry, defaults)  # reports the unknown type
    name = getattr(cls, "__name__", repr(cls))
    merged.pop("type")
    if _converts_like_the_base(cls):
        # Through build_from_cfg, so misspelled arguments get the registry's suggestions.
        converted = cls._iter_based_kwargs(merged, epoch_length)
        converted["type"] = cls
        return build_from_cfg(converted, registry)
    convert_fn = getattr(cls, "build_iter_from_epoch", None)
    if convert_fn is None:
        raise ConfigError(
            f"{name} has convert_to_iter_based=True but no build_iter_from_epoch classmethod "
            "to convert with; remove convert_to_iter_based or derive it from _ParamScheduler",
            key="convert_to_iter_based",
        )
    try:
        return convert_fn(**merged, epoch_length=epoch_length)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"building {name} failed: {type(error).__name__}: {error}") from error


def build_param_schedulers(
    param_scheduler_cfg: Any,
    optim_wrapper: Any,
    epoch_length: int | None = None,
    max_epochs: int | None = None,
    max_iters: int | None = None,
) -> list | dict[str, list]:
    """Build the ``param_scheduler`` section of a config for one or several optimizers.

    Args:
        param_scheduler_cfg: None, one scheduler config (or built scheduler), a list of
            them, or a dict mapping optimizer names to such lists (for several optimizers).
        optim_wrapper: an optimizer (wrapper), or a mapping of names to them such as an
            ``OptimWrapperDict`` (anything with ``items()`` whose ``param_groups`` is not a
            list).
        epoch_length: iterations per epoch, for ``convert_to_iter_based``.
        max_epochs, max_iters: fill a missing ``end`` with the train loop's length
            (``max_epochs`` for ``by_epoch=True`` schedulers, ``max_iters`` otherwise).

    Returns:
        A list of schedulers for one optimizer, or a dict of such lists keyed like
        ``optim_wrapper``. A list config given with several optimizers is built once per
        optimizer. Errors name the config path, e.g. ``param_scheduler[1].milestones``.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> cfg = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, end=50),
        ...        dict(type='MultiStepLR', milestones=[8, 11])]
        >>> [type(s).__name__ for s in build_param_schedulers(cfg, opt, max_epochs=12)]
        ['LinearLR', 'MultiStepLR']
    """
    if _is_unbuilt(optim_wrapper):
        raise OptimWrapperNotBuiltError(
            f"is still a config ({_describe_config(optim_wrapper)}), but schedulers need the "
            "built optimizer wrapper. Build it first, e.g. optim_wrapper = "
            "build_optim_wrapper(model, cfg) or runner.build_optim_wrapper(cfg), and pass "
            "the result",
            key="optim_wrapper",
        )
    fill = dict(epoch_length=epoch_length, max_epochs=max_epochs, max_iters=max_iters)
    if not _holds_several(optim_wrapper):
        if isinstance(param_scheduler_cfg, Mapping) and _is_keyed(param_scheduler_cfg):
            raise ConfigError(
                f"is a dict keyed by {quoted_list(param_scheduler_cfg)}, the form for several "
                "optimizers, but there is one optimizer; give a list of scheduler configs "
                "(each with a 'type')",
                key="param_scheduler",
            )
        return _build_list(param_scheduler_cfg, optim_wrapper, "param_scheduler", **fill)

    wrappers = dict(optim_wrapper.items())
    if isinstance(param_scheduler_cfg, Mapping) and _is_keyed(param_scheduler_cfg):
        unknown = [key for key in param_scheduler_cfg if key not in wrappers]
        if unknown:
            hints = "".join(did_you_mean(str(key), wrappers) for key in unknown)
            raise ConfigError(
                f"names optimizers {quoted_list(unknown)} that do not exist; the optimizers "
                f"are {quoted_list(wrappers)}.{hints}",
                key="param_scheduler",
            )
        # An optimizer without an entry simply has no schedulers.
        return {
            name: _build_list(
                param_scheduler_cfg.get(name), wrapper, f"param_scheduler.{name}", **fill
            )
            for name, wrapper in wrappers.items()
        }
    return {
        name: _build_list(param_scheduler_cfg, wrapper, "param_scheduler", **fill)
        for name, wrapper in wrappers.items()
    }


class OptimWrapperNotBuiltError(ConfigError, AssertionError):
    """The optimizer wrapper given to build schedulers is still a config dict.

    An AssertionError as well, the class the reference engine raises here, so code written
    for it that catches AssertionError keeps working.
    """


# Keys only an optimizer wrapper config has; a mapping of built wrappers has none of them.
_CONFIG_KEYS = ("type", "optimizer", "constructor", "paramwise_cfg")


def _is_unbuilt(optim_wrapper: Any) -> bool:
    if not isinstance(optim_wrapper, Mapping) or hasattr(optim_wrapper, "optim_wrappers"):
        return False
    return any(key in optim_wrapper for key in _CONFIG_KEYS) or any(
        isinstance(value, Mapping) for value in optim_wrapper.values()
    )


def _describe_config(cfg: Mapping) -> str:
    keys = [str(key) for key in cfg]
    shown = ", ".join(f"{key}=..." for key in keys[:3]) + (", ..." if len(keys) > 3 else "")
    return f"dict({shown})"


def _converts_like_the_base(cls: Any) -> bool:
    """True for scheduler classes that keep the base class's ``build_iter_from_epoch``."""
    if not (inspect.isclass(cls) and issubclass(cls, _ParamScheduler)):
        return False
    own = getattr(cls.build_iter_from_epoch, "__func__", None)
    return own is _ParamScheduler.build_iter_from_epoch.__func__


def _holds_several(optim_wrapper: Any) -> bool:
    if isinstance(optim_wrapper, Mapping):
        return True
    groups = getattr(optim_wrapper, "param_groups", None)
    return callable(getattr(optim_wrapper, "items", None)) and not isinstance(groups, list)


def _is_keyed(cfg: Mapping) -> bool:
    return "type" not in cfg


def _build_list(
    cfg: Any,
    optimizer: Any,
    path: str,
    epoch_length: int | None,
    max_epochs: int | None,
    max_iters: int | None,
) -> list:
    if cfg is None:
        return []
    items = list(cfg) if isinstance(cfg, (list, tuple)) else [cfg]
    schedulers = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if isinstance(item, _ParamScheduler) or (
            not isinstance(item, Mapping) and hasattr(item, "step")
        ):
            schedulers.append(item)  # already built
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(
                f"expected a scheduler config dict(type=..., ...) or a scheduler, got "
                f"{type(item).__name__} {item!r}",
                key=where,
            )
        item = dict(item)
        if "end" not in item:
            by_epoch = item.get("by_epoch", True)
            default_end = max_epochs if by_epoch else max_iters
            if default_end is not None:
                item["end"] = default_end
                print_log(
                    f"{where} ({item.get('type')}) has no end; using the train loop's "
                    f"{'max_epochs' if by_epoch else 'max_iters'}={default_end}",
                    logger="current",
                    level=logging.DEBUG,
                )
        try:
            schedulers.append(
                PARAM_SCHEDULERS.build(
                    item, default_args=dict(optimizer=optimizer, epoch_length=epoch_length)
                )
            )
        except ConfigError as error:
            raise error.under(where)
    return schedulers
