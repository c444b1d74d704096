"""`BlockByBlockBuild`: building a model for ``FSDPStrategy(init_device='meta')`` without
holding all of it in memory, with exactly the weights the usual CPU build gives.

The model's constructor runs on the CPU as usual, drawing from the random generators in the
usual order, so every value is the one the usual build computes. What changes is what stays
in memory: as soon as a block (a module whose class is named in ``shard.blocks``) is
registered in its parent, its tensors are taken: each is broadcast from rank 0 (as the usual
build broadcasts rank 0's weights), this rank's shard of each parameter (FSDP2 shards dimension
0 into equal chunks) and each buffer (FSDP2 does not shard buffers) are kept, and the module
gets meta tensors in their place. The memory of one block at a time is in use while the model
is built. After sharding and ``to_empty``, :meth:`BlockByBlockBuild.materialise` writes the
kept values into the shards.

A constructor that still uses a block's tensors after registering it (an in-place init of a
block from its parent, for instance) would compute on meta tensors and lose the value: any
operation on a taken tensor during the build stops it with an error.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from minirunner.utils import ConfigError

_KINDS = ("_parameters", "_buffers")


class BlockByBlockBuild:
    """A context manager for the model's construction (see the module's docstring).

    Args:
        block_classes: class names of the modules taken as soon as they are registered.
        shard_size: the number of ranks a parameter is sharded over.
        shard_rank: this rank's index among them.
        group: the (CPU, gloo) process group that broadcasts rank 0's values.
    """

    def __init__(self, block_classes: list[str], shard_size: int, shard_rank: int, group: Any) -> None:
        self.block_classes = set(block_classes)
        self.shard_size, self.shard_rank, self.group = shard_size, shard_rank, group
        self.busy = False  # True while this class itself operates on tensors
        # Each taken tensor keeps its Python object (other references, such as a tied
        # weight, still point at it) but its storage becomes the sentinel's.
        self._sentinel = torch.empty(1)
        self._replacement: dict[int, Tensor] = {}  # id(taken tensor) -> its meta replacement
        self._value: dict[int, Tensor | None] = {}  # id(meta replacement) -> kept value
        self._alive: list[Tensor] = []  # the taken tensors and replacements: their ids stay valid
        self._handle: Any = None
        self._guard: _Guard | None = None

    # ------------------------------------------------------------------ construction
    def __enter__(self) -> "BlockByBlockBuild":
        self._handle = nn.modules.module.register_module_module_registration_hook(self._on_register)
        self._guard = _Guard(self)
        self._guard.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.remove()
        assert self._guard is not None
        self._guard.__exit__(*exc)

    def _on_register(self, parent: nn.Module, name: str, module: nn.Module | None) -> None:
        if module is not None and type(module).__name__ in self.block_classes:
            self.take(module)

    def take(self, module: nn.Module) -> None:
        """Keep this rank's part of every tensor of ``module`` not yet taken; the module gets
        meta tensors in their place. Every rank calls it, for the same modules in the same order."""
        self.busy = True
        try:
            with torch.no_grad():
                for submodule in module.modules():
                    for kind in _KINDS:
                        slots = getattr(submodule, kind)
                        for name, tensor in list(slots.items()):
                            if tensor is None or id(tensor) in self._value:
                                continue
                            replacement = self._replacement.get(id(tensor))
                            if replacement is None:
                                replacement = self._take(tensor, kind == "_parameters", f"{type(submodule).__name__}.{name}")
                            slots[name] = replacement
        finally:
            self.busy = False

    def _take(self, tensor: Tensor, is_parameter: bool, label: str) -> Tensor:
        if tensor.is_meta:
            raise ConfigError(
                f"{label} is on the meta device already: with init_device='meta' the model is built on the CPU "
                "block by block; create its tensors there",
                key="strategy.init_device",
            )
        if torch_dist.is_initialized():
            torch_dist.broadcast(tensor.detach(), src=0, group=self.group)
        if is_parameter:
            chunks = torch.chunk(tensor.detach(), self.shard_size, dim=0)
            # A clone: the chunk is a view that would keep the whole tensor alive.
            value = chunks[self.shard_rank].clone() if self.shard_rank < len(chunks) else None
            replacement: Tensor = nn.Parameter(torch.empty_like(tensor, device="meta"), tensor.requires_grad)
            replacement.__dict__.update(tensor.__dict__)  # attributes set on the parameter
        else:
            value = tensor.detach()  # shares the storage, which the tensor itself now gives up
            replacement = torch.empty_like(tensor, device="meta")
        tensor.data = self._sentinel
        self._replacement[id(tensor)] = replacement
        self._value[id(replacement)] = value
        self._alive += [tensor, replacement]
        return replacement

    def touches_taken(self, tensor: Tensor) -> bool:
        """Whether ``tensor`` is (a view of) a taken tensor or a meta replacement."""
        if tensor.is_meta:
            return True
        try:
            return tensor.untyped_storage().data_ptr() == self._sentinel.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # a tensor without storage
            return False

    # ------------------------------------------------------------------ after sharding
    def locate(self, model: nn.Module) -> list[tuple[str, nn.Module, str, str, Tensor | None]]:
        """Take what is left of ``model`` (the modules outside its blocks), then list every
        tensor's place: ``(qualified name, module, kind, name, kept value)``. Call it before
        sharding: ``fully_shard`` replaces the parameters."""
        self.take(model)
        places = []
        for prefix, module in model.named_modules():
            for kind in _KINDS:
                for name, tensor in getattr(module, kind).items():
                    if tensor is not None:
                        places.append((f"{prefix}.{name}" if prefix else name, module, kind, name, self._value[id(tensor)]))
        return places

    @staticmethod
    def materialise(places: list[tuple[str, nn.Module, str, str, Tensor | None]]) -> None:
        """Write the kept values into the model, sharded and given memory by ``to_empty``."""
        from torch.distributed.tensor import DTensor

        with torch.no_grad():
            for qualified, module, kind, name, value in places:
                tensor = getattr(module, kind)[name]
                local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
                if value is None or local.numel() == 0:
                    if (value is not None and value.numel()) or local.numel():
                        raise RuntimeError(f"init_device='meta': {qualified}: this rank's shard has "
                                           f"{local.numel()} elements, the built tensor gave it "
                                           f"{0 if value is None else value.numel()}")
                    continue
                if local.shape != value.shape:
                    raise RuntimeError(
                        f"init_device='meta': {qualified}: this rank's shard is {tuple(local.shape)}, but "
                        f"chunking the built tensor on dimension 0 gave {tuple(value.shape)}"
                    )
                local.copy_(value)


class _Guard(TorchDispatchMode):
    """Stops the build at any operation on a taken tensor (its value would be lost)."""

    def __init__(self, build: BlockByBlockBuild) -> None:
        super().__init__()
        self.build = build

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if not self.build.busy:
            for leaf in tree_leaves((args, kwargs)):
                if isinstance(leaf, Tensor) and self.build.touches_taken(leaf):
                    raise ConfigError(
                        f"init_device='meta' cannot build this model: its constructor runs {func} on a tensor of "
                        f"shape {tuple(leaf.shape)} after the block holding it was registered (its value is already "
                        "sharded away). Initialise each block inside its own constructor, or use init_device='cpu'",
                        key="strategy.init_device",
                    )
        return func(*args, **kwargs)
