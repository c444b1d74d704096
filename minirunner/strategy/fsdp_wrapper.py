"""`FSDPModelWrapper`: the runner's ``train_step`` interface around a model sharded by FSDP2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from minirunner.model.wrappers import wrapped_train_step
from minirunner.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class FSDPModelWrapper(nn.Module):
    """Holds a model whose blocks and root ``fully_shard`` has sharded, as ``module``.

    FSDP2 needs no wrapper of its own (the sharded model is still the user's class); this one
    gives the runner what it expects of a distributed model: ``train_step`` that passes the
    wrapper to ``optim_wrapper.optim_context``, and ``no_sync()``, which switches off FSDP2's
    gradient reduction (``set_requires_gradient_sync(False)``) on accumulation iterations
    that do not step (see :meth:`no_sync`).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self._grad_sync = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The sharded model's forward."""
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Switch off gradient reduction for this iteration's backward.

        Unlike DDP, which decides during the forward pass, FSDP2 reads the switch during
        backward, which runs after this context is left: the switch stays off until the next
        :meth:`train_step` that is not inside ``no_sync`` turns it back on.
        """
        if self._grad_sync:
            self.module.set_requires_gradient_sync(False)
            self._grad_sync = False
        yield

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """Preprocess, forward, parse losses and update the parameters."""
        if not self._grad_sync:  # the last iteration accumulated; this one may step
            self.module.set_requires_gradient_sync(True)
            self._grad_sync = True
        return wrapped_train_step(self, self.module, data, optim_wrapper)

    def val_step(self, data: Any) -> Any:
        """The sharded model's ``val_step``."""
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        """The sharded model's ``test_step``."""
        return self.module.test_step(data)
