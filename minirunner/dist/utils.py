"""Rank and world-size helpers that also work when not distributed.

Collective helpers (barrier, broadcast, gather, reduce) are no-ops or identity functions in a
single process, so calling code never has to branch on whether it runs under torchrun.
"""

from __future__ import annotations

import functools
import os
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


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (``obj`` itself when not distributed)."""
    if not is_distributed():
        return obj
    box = [obj]
    torch_dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Return the list of every rank's ``obj``, in rank order (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    torch_dist.all_gather_object(gathered, obj)
    return gathered


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
