"""`SyncBuffersHook`: average the model's buffers (BatchNorm statistics) over processes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as torch_dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from minirunner.dist import get_world_size, is_distributed
from minirunner.registry import HOOKS

from .hook import Hook


def all_reduce_buffers_mean(tensors: Iterable[torch.Tensor]) -> None:
    """Replace each tensor by its mean over all processes, in place.

    Tensors of one dtype and device are reduced together as one flat tensor (one
    collective per group instead of one per buffer). Integer tensors get the mean
    truncated towards zero, as the reference does; they are normally equal on every
    process (``num_batches_tracked``), so they keep their value. A no-op when not
    distributed.
    """
    if not is_distributed():
        return
    world_size = get_world_size()
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.dtype, tensor.device), []).append(tensor.data)
    with torch.no_grad():
        for group in groups.values():
            flat = _flatten_dense_tensors(group)
            torch_dist.all_reduce(flat, op=torch_dist.ReduceOp.SUM)
            mean = torch.true_divide(flat, world_size)
            for tensor, synced in zip(group, _unflatten_dense_tensors(mean, group)):
                tensor.copy_(synced)


@HOOKS.register_module()
class SyncBuffersHook(Hook):
    """Average the model's buffers over all processes after each training epoch.

    DDP trains one copy of the model per process; parameters stay equal, but buffers
    such as BatchNorm's ``running_mean``/``running_var`` follow each process's own data.
    This hook makes them the mean over processes after every training epoch, and before
    a validation epoch when no training epoch has just synchronised them (validation
    inside an iteration-based loop). Without distributed training it does nothing.

    Not a default hook; add it with
    ``default_hooks = dict(sync_buffer=dict(type='SyncBuffersHook'))``.
    """

    priority = "NORMAL"

    def __init__(self) -> None:
        self.distributed = is_distributed()
        # Whether after_train_epoch has synchronised since the last validation epoch.
        self.called_in_train = False

    def before_run(self, runner: Any) -> None:
        """Look again: the process group may start after the hook is built."""
        self.distributed = is_distributed()

    def before_val_epoch(self, runner: Any) -> None:
        """Synchronise, unless the training epoch that just ended already did."""
        if self.distributed:
            if not self.called_in_train:
                all_reduce_buffers_mean(runner.model.buffers())
            self.called_in_train = False

    def after_train_epoch(self, runner: Any) -> None:
        """Synchronise the buffers at the end of every training epoch."""
        if self.distributed:
            all_reduce_buffers_mean(runner.model.buffers())
            self.called_in_train = True
