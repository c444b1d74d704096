"""Model wrappers for distributed training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from minirunner.registry import MODEL_WRAPPERS

MODEL_WRAPPERS.register_module(module=DistributedDataParallel)


@MODEL_WRAPPERS.register_module(name=["MiniDistributedDataParallel", "MMDistributedDataParallel"])
class MiniDistributedDataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that speaks the runner's ``train_step`` interface.

    Built by the runner under a launcher as ``dict(type='MiniDistributedDataParallel')``
    (the reference's name ``'MMDistributedDataParallel'`` is an alias) with the model as
    ``module``; every other argument goes to ``DistributedDataParallel``.

    :meth:`train_step` calls the wrapper itself (not the wrapped module) for the forward
    pass, so DDP's hooks all-reduce the gradients, and passes the wrapper to
    ``optim_wrapper.optim_context`` so that accumulation steps run under ``no_sync()``.
    :meth:`val_step` and :meth:`test_step` need no communication and call the wrapped
    module's own.
    """

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """Preprocess, forward through DDP, parse losses and update the parameters."""
        module = self.module
        with optim_wrapper.optim_context(self):
            data = module.data_preprocessor(data, True)
            if isinstance(data, Mapping):
                losses = self(**data, mode="loss")
            else:
                losses = self(*data, mode="loss")
        loss, log_vars = module.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """The wrapped model's ``val_step``."""
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        """The wrapped model's ``test_step``."""
        return self.module.test_step(data)


def is_model_wrapper(model: nn.Module) -> bool:
    """True when ``model`` is an instance of a class registered in ``MODEL_WRAPPERS``
    (or a child registry of it), i.e. the real model is ``model.module``."""
    pending = [MODEL_WRAPPERS]
    while pending:
        registry = pending.pop()
        for obj in registry.module_dict.values():
            if isinstance(obj, type) and isinstance(model, obj):
                return True
        pending.extend(registry.children.values())
    return False
