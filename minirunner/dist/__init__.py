"""Distributed helpers that work the same in one process and under torchrun."""

from .init import init_dist
from .utils import (
    all_gather_object,
    all_reduce,
    barrier,
    broadcast_object,
    get_local_rank,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    master_only,
)

__all__ = [
    "all_gather_object", "all_reduce", "barrier", "broadcast_object", "get_local_rank",
    "get_rank", "get_world_size", "init_dist", "is_distributed", "is_main_process", "master_only",
]
