"""Rank and world-size helpers that also work when not distributed.

Collective helpers (barrier, broadcast, gather, reduce) are no-ops or identity functions in a
single process, so calling code never has to branch on whether it runs under torchrun.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pickle
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as torch_dist

F = TypeVar("F", bound=Callable[..., Any])


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return torch_dist.is_available() and torch_dist.is_initialized()


def get_rank() -> int:
    """The global rank of this process (0 when not distributed)."""
    return torch_dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes in the job (1 when not distributed)."""
    return torch_dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    """The rank of this process on its machine, from torchrun's ``LOCAL_RANK`` (else 0)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    """True on rank 0, the process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process; returns at once when not distributed."""
    if is_distributed():
        torch_dist.barrier()


def _collective_device() -> torch.device:
    # NCCL moves only CUDA tensors; gloo moves CPU tensors.
    if torch_dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _to_bytes(tensor: torch.Tensor, size: int) -> bytes:
    data = tensor[:size].contiguous().cpu()
    return ctypes.string_at(data.data_ptr(), size) if size else b""


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (``obj`` itself when not distributed).

    Objects travel as pickled bytes in a uint8 tensor. torch's own object collectives
    decode through NumPy, which the CPU wheel does not install.
    """
    if not is_distributed():
        return obj
    device = _collective_device()
    if get_rank() == src:
        payload = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device)
        size = torch.tensor([payload.numel()], dtype=torch.long, device=device)
    else:
        size = torch.zeros(1, dtype=torch.long, device=device)
    torch_dist.broadcast(size, src=src)
    if get_rank() != src:
        payload = torch.empty(int(size.item()), dtype=torch.uint8, device=device)
    torch_dist.broadcast(payload, src=src)
    return obj if get_rank() == src else pickle.loads(_to_bytes(payload, int(size.item())))


def all_gather_object(obj: Any) -> list[Any]:
    """Return the list of every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    device = _collective_device()
    payload = torch.frombuffer(bytearray(pickle.dumps(obj)), dtype=torch.uint8).to(device)
    size = torch.tensor([payload.numel()], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(size) for _ in range(get_world_size())]
    torch_dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    padded = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
    padded[: payload.numel()] = payload
    chunks = [torch.empty_like(padded) for _ in lengths]
    torch_dist.all_gather(chunks, padded)
    return [pickle.loads(_to_bytes(chunk, length)) for chunk, length in zip(chunks, lengths)]


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce ``tensor`` across ranks in place with ``op`` ('sum' or 'mean') and return it."""
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce op must be 'sum' or 'mean', got {op!r}")
    if not is_distributed():
        return tensor
    torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
    if op == "mean":
        tensor.div_(get_world_size())
    return tensor


def master_only(func: F) -> F:
    """Run ``func`` on rank 0 only; other ranks get None."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_main_process():
            return func(*args, **kwargs)
        return None

    return wrapper  # type: ignore[return-value]
