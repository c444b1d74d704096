"""`BlockByBlockBuild`: building a model for ``FSDPStrategy(init_device='meta')`` without
holding all of it in memory, with exactly the weights the usual CPU build gives.

The model's constructor runs on the CPU as usual, drawing from the random generators in the
usual order, so every value is the one the usual build computes. What changes is what stays
in memory: as soon as a block (a module whose class is named in ``shard.blocks``) has been
constructed (its class's ``__init__`` returned), its tensors are taken: each is broadcast from
rank 0 (as the usual build broadcasts rank 0's weights), this rank's shard of each parameter
(FSDP2 shards dimension 0 into equal chunks) and each buffer (FSDP2 does not shard buffers)
are kept, and the module gets placeholders in their place. Besides the kept shards, one block
at a time is in memory while the model is built. Before sharding, :meth:`~BlockByBlockBuild.locate`
puts meta tensors in the placeholders' places; after it, :meth:`~BlockByBlockBuild.materialise`
gives the model memory (``to_empty``, module by module) and writes the kept values in.

For that, the ``__init__`` of each block class is wrapped while the model is built. A
constructor that still uses a block's tensors afterwards (an in-place init of a block from its
parent, for instance) would lose the value: until the build ends, a taken tensor's place holds
a placeholder (:class:`_Taken`) on which any operation stops the build with an error.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any, Callable

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from minirunner.utils import ConfigError

_KINDS = ("_parameters", "_buffers")


class BlockByBlockBuild:
    """A context manager for the model's construction (see the module's docstring).

    Args:
        block_classes: class names of the modules taken as soon as they are constructed.
        shard_size: the number of ranks a parameter is sharded over.
        shard_rank: this rank's index among them.
        group: the (CPU, gloo) process group that broadcasts rank 0's values.
    """

    def __init__(self, block_classes: list[str], shard_size: int, shard_rank: int, group: Any) -> None:
        self.block_classes = set(block_classes)
        self.shard_size, self.shard_rank, self.group = shard_size, shard_rank, group
        # Each taken tensor keeps its Python object (other references, such as a tied
        # weight, still point at it) but its storage becomes the sentinel's.
        self._sentinel = torch.empty(0)
        self._placeholder: dict[int, Tensor] = {}  # id(taken tensor) -> its placeholder
        self._kept: dict[int, tuple[Tensor | None, dict]] = {}  # id(placeholder) -> (value, attributes)
        self._alive: list[Tensor] = []  # the taken tensors and placeholders: their ids stay valid
        self._patched: list[tuple[type, Any]] = []  # (class, its own __init__ or None)

    # ------------------------------------------------------------------ construction
    def __enter__(self) -> "BlockByBlockBuild":
        for cls in _module_classes():
            if cls.__name__ in self.block_classes:
                self._patched.append((cls, cls.__dict__.get("__init__")))
                cls.__init__ = self._taking_init(cls, cls.__init__)  # type: ignore[misc]
        return self

    def __exit__(self, *exc: Any) -> None:
        for cls, own in reversed(self._patched):
            if own is None:
                del cls.__init__  # type: ignore[misc]
            else:
                cls.__init__ = own  # type: ignore[misc]
        self._patched = []

    def _taking_init(self, cls: type, init: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(init)  # keeps the signature that config checks read
        def taking_init(module: nn.Module, *args: Any, **kwargs: Any) -> None:
            init(module, *args, **kwargs)
            if type(module) is cls:  # not when a subclass's __init__ is still running
                self.take(module)

        return taking_init

    def take(self, module: nn.Module) -> None:
        """Keep this rank's part of every tensor of ``module`` not yet taken; the module gets
        placeholders in their place. Every rank calls it, for the same modules in the same order."""
        with torch.no_grad():
            for submodule in module.modules():
                for kind in _KINDS:
                    slots = getattr(submodule, kind)
                    for name, tensor in list(slots.items()):
                        if tensor is None or id(tensor) in self._kept:
                            continue
                        placeholder = self._placeholder.get(id(tensor))
                        if placeholder is None:
                            placeholder = self._take(tensor, kind == "_parameters", f"{type(submodule).__name__}.{name}")
                        slots[name] = placeholder
        _return_freed_memory()

    def _take(self, tensor: Tensor, is_parameter: bool, label: str) -> Tensor:
        if tensor.is_meta:
            raise ConfigError(
                f"{label} is on the meta device: with init_device='meta' the model is built on the CPU block by "
                "block; create its tensors there",
                key="strategy.init_device",
            )
        if torch_dist.is_initialized():
            torch_dist.broadcast(tensor.detach(), src=0, group=self.group)
        if is_parameter:
            chunks = torch.chunk(tensor.detach(), self.shard_size, dim=0)
            # A clone: the chunk is a view that would keep the whole tensor alive.
            value = chunks[self.shard_rank].clone() if self.shard_rank < len(chunks) else None
            placeholder: Tensor = nn.Parameter(_Taken(tensor), tensor.requires_grad)
        else:
            value = tensor.detach()  # shares the storage, which the tensor itself now gives up
            placeholder = _Taken(tensor)
        tensor.data = self._sentinel
        self._placeholder[id(tensor)] = placeholder
        self._kept[id(placeholder)] = (value, dict(tensor.__dict__))  # attributes set on a parameter
        self._alive += [tensor, placeholder]
        return placeholder

    # ------------------------------------------------------------------ after sharding
    def locate(self, model: nn.Module) -> list[tuple[str, nn.Module, str, str, Tensor | None]]:
        """Take what is left of ``model`` (the modules outside its blocks), put meta tensors
        in the placeholders' places, and list every tensor's place: ``(qualified name,
        module, kind, name, kept value)``. Call it before sharding: ``fully_shard`` replaces
        the parameters."""
        self.take(model)
        meta: dict[int, Tensor] = {}  # id(placeholder) -> its meta tensor (tied tensors stay tied)
        places = []
        for prefix, module in model.named_modules():
            for kind in _KINDS:
                slots = getattr(module, kind)
                for name, placeholder in list(slots.items()):
                    if placeholder is None:
                        continue
                    value, attributes = self._kept[id(placeholder)]
                    if id(placeholder) not in meta:
                        empty = torch.empty(placeholder.shape, dtype=placeholder.dtype, device="meta")
                        if kind == "_parameters":
                            empty = nn.Parameter(empty, placeholder.requires_grad)
                            empty.__dict__.update(attributes)
                        meta[id(placeholder)] = empty
                    slots[name] = meta[id(placeholder)]
                    places.append((f"{prefix}.{name}" if prefix else name, module, kind, name, value))
        self._kept.clear()  # the values now live in places only
        self._alive.clear()
        return places

    @staticmethod
    def materialise(places: list[tuple[str, nn.Module, str, str, Tensor | None]], device: torch.device | str) -> None:
        """Give the sharded model memory on ``device`` (``to_empty``) and write the kept
        values in, one module at a time, freeing each value once written: the kept values
        and the new shards are never both whole. Empties ``places``."""
        from torch.distributed.tensor import DTensor

        by_module: dict[int, tuple[nn.Module, list]] = {}
        for qualified, module, kind, name, value in places:
            by_module.setdefault(id(module), (module, []))[1].append((qualified, kind, name, value))
        places.clear()  # the values now live in by_module only
        with torch.no_grad():
            for module, entries in by_module.values():
                # FSDP2 takes the new local tensors at its lazy initialisation (or at once
                # for the parameters of an FSDP module, whose _apply resets them).
                module.to_empty(device=device, recurse=False)
                while entries:
                    qualified, kind, name, value = entries.pop()
                    tensor = getattr(module, kind)[name]
                    local = tensor.to_local() if isinstance(tensor, DTensor) else tensor
                    _copy_kept(qualified, local, value)
                del value
                _return_freed_memory()  # the values written so far


def _return_freed_memory() -> None:
    """Have glibc give the freed heap pages back to the system. Blocks and the kept shards
    are allocated in turn, so the freed blocks lie between kept shards, where malloc would
    otherwise keep them: the process's memory would grow as if nothing were freed (and
    likewise for the kept values freed while the new shards are allocated)."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _copy_kept(qualified: str, local: Tensor, value: Tensor | None) -> None:
    if value is None or local.numel() == 0:
        if (value is not None and value.numel()) or local.numel():
            raise RuntimeError(
                f"init_device='meta': {qualified}: this rank's shard has {local.numel()} elements, the built "
                f"tensor gave it {0 if value is None else value.numel()}"
            )
        return
    if local.shape != value.shape:
        raise RuntimeError(
            f"init_device='meta': {qualified}: this rank's shard is {tuple(local.shape)}, but chunking the built "
            f"tensor on dimension 0 gave {tuple(value.shape)}"
        )
    local.copy_(value)


def _module_classes() -> list[type]:
    """Every subclass of ``nn.Module`` defined so far."""
    found, pending = [], [nn.Module]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found.append(sub)
                pending.append(sub)
    return found


class _Taken(Tensor):
    """What a taken tensor's place holds until the build ends: a tensor with its shape and
    dtype and no data, on which every operation (other than detaching, which
    ``nn.Parameter`` does) is refused with an error."""

    @staticmethod
    def __new__(cls, like: Tensor) -> "_Taken":
        return Tensor._make_wrapper_subclass(cls, like.shape, dtype=like.dtype, device="meta")  # type: ignore[attr-defined]

    def __init__(self, like: Tensor) -> None:
        super().__init__()

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is torch.ops.aten.detach.default:
            return _Taken(args[0])
        raise ConfigError(
            f"init_device='meta' cannot build this model: its constructor runs {func} on a tensor of a block "
            f"(shape {tuple(args[0].shape) if args and isinstance(args[0], Tensor) else '?'}) after the block was "
            "constructed, when its value is already sharded away. Initialise each block inside its own "
            "constructor, or use init_device='cpu'",
            key="strategy.init_device",
        )

    __torch_function__ = torch._C._disabled_torch_function_impl
