"""`DDPStrategy`: data parallel training with DistributedDataParallel, the default under torchrun."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from minirunner.model.wrappers import wrap_distributed
from minirunner.registry import STRATEGIES

from .base import BaseStrategy


@STRATEGIES.register_module()
class DDPStrategy(BaseStrategy):
    """Every rank holds the whole model; gradients are all-reduced by DDP.

    Args:
        model_wrapper: a ``MODEL_WRAPPERS`` config (the top-level ``model_wrapper_cfg``);
            None gives ``MiniDistributedDataParallel`` without buffer broadcasts, the
            reference's default.
        find_unused_parameters: passed to DDP wrappers (the top-level key of that name).
        sync_bn: True (or ``'torch'``) converts BatchNorm layers to SyncBatchNorm on GPUs.

    Example:
        >>> strategy = dict(type='DDPStrategy', find_unused_parameters=True)  # in a config
    """

    def __init__(
        self,
        model_wrapper: dict | None = None,
        find_unused_parameters: bool | None = None,
        sync_bn: bool | str | None = None,
    ) -> None:
        self.model_wrapper = model_wrapper
        self.find_unused_parameters = find_unused_parameters
        self.sync_bn = sync_bn

    def wrap(self, model: nn.Module) -> nn.Module:
        """Wrap ``model`` in the configured DDP wrapper (see
        :func:`~minirunner.model.wrappers.wrap_distributed`); errors name the config keys."""
        if not torch_dist.is_initialized():
            return model
        return wrap_distributed(
            model, self.model_wrapper, find_unused_parameters=self.find_unused_parameters, sync_bn=self.sync_bn
        )

    def broadcast_initial_weights(self, model: nn.Module) -> None:
        """Every rank takes rank 0's parameters and buffers."""
        if torch_dist.is_initialized():
            for value in self.unwrap(model).state_dict().values():
                if isinstance(value, torch.Tensor):
                    torch_dist.broadcast(value, src=0)

    def __repr__(self) -> str:
        args: dict[str, Any] = dict(
            model_wrapper=self.model_wrapper, find_unused_parameters=self.find_unused_parameters, sync_bn=self.sync_bn
        )
        return f"DDPStrategy({', '.join(f'{k}={v!r}' for k, v in args.items() if v is not None)})"
