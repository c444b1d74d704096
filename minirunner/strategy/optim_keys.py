"""Re-keying an optimizer's state between torch's two layouts, so that a one-file checkpoint
resumes whichever strategy wrote it.

``optimizer.state_dict()`` keys the state (and each group's ``params``) by the parameter's
index in the optimizer's groups; ``torch.distributed.checkpoint.state_dict`` (what
``FSDPStrategy(state_dict='full')`` writes) keys them by the parameter's name in the model.
Both list the groups' parameters in the optimizer's order, which is how one maps to the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from minirunner.utils import ConfigError


def keyed_by(state: Mapping[str, Any]) -> str | None:
    """``'name'`` or ``'index'`` for an optimizer state dict, None when it cannot tell (no
    parameter listed, or not an optimizer's state)."""
    groups = state.get("param_groups")
    if not isinstance(groups, list):
        return None
    params = [p for group in groups if isinstance(group, Mapping) for p in group.get("params", [])]
    if params and all(isinstance(p, str) for p in params):
        return "name"
    if params and all(isinstance(p, int) for p in params):
        return "index"
    return None


def rekey(state: Mapping[str, Any], optimizer: torch.optim.Optimizer, model: nn.Module, to: str) -> dict[str, Any]:
    """``state`` with its parameters keyed by ``to`` (``'name'`` or ``'index'``); the other
    entries are kept. The groups must list as many parameters as ``optimizer``'s."""
    names = {id(param): name for name, param in model.named_parameters(remove_duplicate=False)}
    saved_groups = state["param_groups"]
    if [len(g["params"]) for g in saved_groups] != [len(g["params"]) for g in optimizer.param_groups]:
        raise ConfigError(
            f"the checkpoint's optimizer has parameter groups of {[len(g['params']) for g in saved_groups]} "
            f"parameters, this run's {[len(g['params']) for g in optimizer.param_groups]}: resume with the model and "
            "paramwise_cfg of the checkpoint's run, or resume_optimizer=False",
            key="optim_wrapper",
        )
    live = [names.get(id(param)) for group in optimizer.param_groups for param in group["params"]]
    if None in live:
        raise ConfigError("an optimized parameter is not a parameter of the model", key="optim_wrapper")
    saved = [key for group in saved_groups for key in group["params"]]
    if to == "name":  # the groups list the parameters in the optimizer's order
        mapping: dict[Any, Any] = dict(zip(saved, live))
    else:
        position = {name: index for index, name in enumerate(live)}
        unknown = [key for key in saved if key not in position]
        if unknown:
            raise ConfigError(
                f"the checkpoint's optimizer holds parameters this model lacks: {', '.join(map(str, unknown[:5]))}",
                key="optim_wrapper",
            )
        mapping = {key: position[key] for key in saved}
    rekeyed = dict(state)
    rekeyed["state"] = {mapping[key]: value for key, value in state.get("state", {}).items() if key in mapping}
    rekeyed["param_groups"] = [{**group, "params": [mapping[key] for key in group["params"]]} for group in saved_groups]
    return rekeyed
