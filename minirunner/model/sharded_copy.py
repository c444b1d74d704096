"""The averaged copy of a model sharded by FSDP2, and the tensor helpers it needs.

``fully_shard`` turns a model's parameters into DTensors, each rank holding a shard. Deep-copying
such a model would copy FSDP's hooks and state too, so :class:`ShardedModelCopy` copies just
the tensors, into a tree of plain modules with the same names: each rank keeps (and averages)
what it holds.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import Tensor, nn

from minirunner.utils import ConfigError


def fsdp_modules(model: nn.Module) -> list[nn.Module]:
    """The modules of ``model`` that FSDP2's ``fully_shard`` has sharded ([] for any other)."""
    if "torch.distributed.fsdp" not in sys.modules:
        return []  # nothing can be sharded: FSDP2 was never imported
    from torch.distributed.fsdp import FSDPModule

    return [module for module in model.modules() if isinstance(module, FSDPModule)]


def local_shards(tensors: list[Tensor]) -> list[Tensor]:
    """This rank's part of each tensor: a DTensor's local tensor (it shares its storage,
    so in-place updates of it reach the DTensor), any other tensor itself."""
    from torch.distributed.tensor import DTensor

    with torch.no_grad():  # to_local() is then the local tensor itself, not an autograd view
        return [t.to_local() if isinstance(t, DTensor) else t for t in tensors]


def _same_device(actual: torch.device, asked: torch.device) -> bool:
    return actual.type == asked.type and (asked.index is None or actual.index == asked.index)


def copy_full_tensor(dst: Tensor, value: Tensor) -> None:
    """``dst.copy_(value)`` where ``value`` is a whole tensor and ``dst`` may be a DTensor
    (then only this rank's part of ``value`` is copied, with no communication)."""
    if "torch.distributed.tensor" in sys.modules:
        from torch.distributed.tensor import DTensor, distribute_tensor

        if isinstance(dst, DTensor) and not isinstance(value, DTensor):
            value = distribute_tensor(
                value.to(dst.device), dst.device_mesh, dst.placements, src_data_rank=None
            )
    dst.copy_(value)


class ShardedModelCopy(nn.Module):
    """The averaged copy of a model sharded by FSDP2: a tree of plain modules with the
    model's module names, holding clones of its parameters and buffers.

    A parameter's clone is a DTensor of the same mesh and placements whose local tensor is
    a copy of this rank's shard only: the copy costs each rank what it holds of the
    model, and its ``state_dict()`` is what a sharded checkpoint (DCP) saves and loads. It
    cannot run a forward pass by itself; ``EMAHook`` copies its values into the model's
    shards for validation.
    """

    @classmethod
    def of(cls, model: nn.Module, device: torch.device | None = None) -> "ShardedModelCopy":
        """Copy ``model`` (whose FSDP2 modules are resharded first)."""
        for fsdp_module in fsdp_modules(model):
            fsdp_module.reshard()
        tensors: dict[int, Tensor] = {}
        copy = cls._copy(model, {}, tensors)
        if device is not None and any(not _same_device(t.device, device) for t in tensors.values()):
            raise ConfigError(
                f"the model is sharded by FSDPStrategy: its averages are kept beside each rank's shards, "
                f"not on {device}. Remove device",
                key="device",
            )
        return copy

    @classmethod
    def _copy(cls, module: nn.Module, modules: dict[int, nn.Module], tensors: dict[int, Tensor]) -> nn.Module:
        # Modules and tensors shared between places of the model are copied once, so tied
        # weights stay tied.
        copy = modules.get(id(module))
        if copy is not None:
            return copy
        copy = modules[id(module)] = cls()
        with torch.no_grad():
            for name, param in module._parameters.items():
                if param is not None and id(param) not in tensors:
                    tensors[id(param)] = nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad)
                copy._parameters[name] = None if param is None else tensors[id(param)]
            for name, buffer in module._buffers.items():
                if buffer is not None and id(buffer) not in tensors:
                    tensors[id(buffer)] = buffer.detach().clone()
                copy._buffers[name] = None if buffer is None else tensors[id(buffer)]
        copy._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
        for name, child in module._modules.items():
            copy._modules[name] = None if child is None else cls._copy(child, modules, tensors)
        return copy

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: the copy holds only this rank's shards."""
        raise RuntimeError(
            "the average of a model sharded by FSDP2 holds only this rank's shards and cannot run by itself; "
            "EMAHook copies it into the model for validation and test"
        )
