"""Choosing the strategy a run uses: the config's ``strategy``, or the default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.distributed as torch_dist

from minirunner.registry import STRATEGIES, config_key
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .base import BaseStrategy
from .ddp import DDPStrategy


def build_strategy(
    strategy: Any = None,
    model_wrapper_cfg: Mapping | None = None,
    find_unused_parameters: bool | None = None,
    sync_bn: bool | str | None = None,
) -> BaseStrategy:
    """Build the run's strategy.

    ``strategy`` is a ``STRATEGIES`` config such as ``dict(type='FSDPStrategy', ...)``, a
    built strategy, or None: :class:`DDPStrategy` under torchrun, else a one-process
    :class:`BaseStrategy`. The top-level keys ``model_wrapper_cfg``,
    ``find_unused_parameters`` and ``sync_bn`` configure the DDP strategy unless its own
    config sets them. Errors name ``strategy...``.
    """
    if isinstance(strategy, BaseStrategy):
        return strategy
    ddp_defaults = dict(model_wrapper=model_wrapper_cfg, find_unused_parameters=find_unused_parameters, sync_bn=sync_bn)
    if strategy is None:
        return DDPStrategy(**ddp_defaults) if torch_dist.is_initialized() else BaseStrategy()
    if not isinstance(strategy, Mapping) or "type" not in strategy:
        raise ConfigError(
            f"must be a dict such as dict(type='FSDPStrategy', shard=dict(blocks=['Block'])), got {strategy!r}",
            key="strategy",
        )
    cfg = dict(strategy)
    with config_key("strategy"):
        if cfg["type"] in ("DDPStrategy", DDPStrategy):
            for key, value in ddp_defaults.items():
                if value is not None:
                    cfg.setdefault(key, value)
        elif isinstance(cfg["type"], str) and STRATEGIES.get(cfg["type"]) is None:
            known = STRATEGIES.known_names()
            raise ConfigError(
                f"'{cfg['type']}' is not a registered strategy.{did_you_mean(cfg['type'], known)} "
                f"Registered: {quoted_list(known)}",
                key="type",
            )
        return STRATEGIES.build(cfg)
