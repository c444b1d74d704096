"""`BaseStrategy`: how a model is spread over the processes of a run.

A strategy owns the order of building (process group, mesh, wrapping or sharding the model,
loading weights into it) and what depends on how the parameters are laid out: broadcasting
the initial weights, reading and writing the model's state, and checkpoint directories for
sharded state. The Runner's code path is the same whatever strategy it holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from .optim_keys import keyed_by, rekey


class BaseStrategy:
    """One process, nothing to spread: the model is used as it is (the default without torchrun).

    Subclasses override what their layout changes. ``sharded_checkpoints`` is True for a
    strategy whose checkpoints are directories written by every rank (see
    :class:`~minirunner.strategy.FSDPStrategy`); otherwise a checkpoint is one file, whose
    model and optimizer entries come from :meth:`model_state_dict` and
    :meth:`optim_state_dict` and go back through :meth:`load_model_state_dict` and
    :meth:`load_optim_state_dict`.
    """

    sharded_checkpoints: bool = False
    #: True when each rank holds only a shard of the parameters (their gradients cannot be
    #: saved as whole tensors in a file).
    shards_parameters: bool = False
    #: The process group of checkpoint collectives (None: the default group).
    checkpoint_group: Any = None
    #: True when :meth:`wrap` already applied the model's ``init_weights``.
    initialises_weights_at_wrap: bool = False
    #: True when the strategy compiles the model itself, block by block, inside :meth:`wrap`
    #: (see :meth:`compile_blocks`); otherwise the runner compiles the wrapped model.
    compiles_blocks: bool = False

    def compile_blocks(self, options: dict[str, Any], cache_folder: str) -> None:
        """Have :meth:`wrap` compile each block with ``torch.compile(**options)`` (caches in
        ``cache_folder``); only for a strategy whose :attr:`compiles_blocks` is True."""
        raise NotImplementedError(f"{type(self).__name__} does not compile blocks")

    def build_context(self) -> AbstractContextManager:
        """The context the model's constructor runs in (here: nothing; see
        ``FSDPStrategy(init_device='meta')``)."""
        return nullcontext()

    def model_device(self) -> torch.device | None:
        """Where ``build_model`` puts the model before :meth:`wrap`: this process's GPU when
        there is one; None leaves it where it was built (on the CPU)."""
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return None

    def wrap(self, model: nn.Module) -> nn.Module:
        """Return the model to train (here: ``model`` itself)."""
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The user's model inside what :meth:`wrap` returned."""
        from minirunner.model.wrappers import is_model_wrapper

        if isinstance(model, nn.parallel.DistributedDataParallel) or is_model_wrapper(model):
            return model.module
        return model

    def broadcast_initial_weights(self, model: nn.Module) -> None:
        """Give every rank rank 0's initial weights (nothing to do in one process)."""

    def model_state_dict(self, model: nn.Module) -> dict[str, Any]:
        """The model's whole tensors by name, for a one-file checkpoint (``model`` may be
        wrapped). Every rank calls it; only rank 0's result needs to be complete."""
        return self.unwrap(model).state_dict()

    def check_optim_wrapper(self, optim_wrapper: Any) -> None:
        """Refuse, before training starts, an optimizer wrapper whose state this strategy
        cannot checkpoint (every wrapper is fine here)."""

    def optim_state_dict(self, model: nn.Module, optim_wrapper: Any) -> dict[str, Any]:
        """The optimizer wrapper's state for a one-file checkpoint; every rank calls it."""
        return optim_wrapper.state_dict()

    def load_model_state_dict(self, model: nn.Module, state: Mapping[str, Any], strict: bool) -> Any:
        """Load full (unsharded) tensors into the unwrapped ``model``; returns torch's
        ``(missing_keys, unexpected_keys)`` result."""
        return model.load_state_dict(state, strict=strict)

    def load_optim_state_dict(self, model: nn.Module, optim_wrapper: Any, state: Mapping[str, Any]) -> None:
        """Load what :meth:`optim_state_dict` returned (every rank has read it). A state keyed
        by parameter name (a file of ``FSDPStrategy(state_dict='full')``) is re-keyed by index."""
        optimizer = getattr(optim_wrapper, "optimizer", None)
        if isinstance(optimizer, torch.optim.Optimizer) and keyed_by(state) == "name":
            state = rekey(state, optimizer, self.unwrap(model), to="index")
        optim_wrapper.load_state_dict(state)

    def sharded_state(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        """``{'model': ..., 'optimizer': ...}`` keyed by parameter names, as DCP saves and loads
        it (DTensors for a sharded model). The optimizer's state is created first when it has
        none yet, so that it can be loaded into."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

        module = self.unwrap(model)
        if optimizer is None:
            return {"model": get_model_state_dict(module)}
        model_state, optim_state = get_state_dict(module, optimizer)
        return {"model": model_state, "optimizer": optim_state}

    def set_sharded_state(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, state: dict) -> None:
        """Load what :meth:`sharded_state` returned (then filled by DCP) into the model and
        the optimizer."""
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_state_dict

        module = self.unwrap(model)
        if optimizer is None or "optimizer" not in state:
            set_model_state_dict(module, state["model"])
        else:
            set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])

