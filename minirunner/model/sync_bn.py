"""Turning ``SyncBatchNorm`` layers back into plain BatchNorm for a run in one process.

A model built for multi-GPU training may hold ``nn.SyncBatchNorm`` layers (a config's model,
or a checkpointed module). Outside a process group torch's SyncBatchNorm cannot train, so the
Runner reverts them when it is not distributed, as MMEngine's ``wrap_model`` does.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["revert_sync_batchnorm"]


class _BatchNormXd(nn.modules.batchnorm._BatchNorm):
    """BatchNorm that accepts input of any rank, like the SyncBatchNorm it replaces
    (``BatchNorm1d/2d/3d`` each check the rank of their input)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        # SyncBatchNorm normalises any (N, C, ...) input; so does this.
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...), got {input.dim()}D input")


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` by an equivalent BatchNorm layer.

    The new layer takes over the old one's parameters (the same ``Parameter`` objects, so an
    optimizer built on them keeps working), running statistics, hyper-parameters and
    train/eval mode. Returns the converted module (a new object when ``module`` itself is
    a SyncBatchNorm); children are replaced in place.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.SyncBatchNorm(8))
        >>> type(revert_sync_batchnorm(model)[1]).__name__
        '_BatchNormXd'
    """
    if isinstance(module, nn.SyncBatchNorm):
        return _plain_copy(module)
    for name, child in list(module.named_children()):
        replaced = revert_sync_batchnorm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


def _plain_copy(sync: nn.SyncBatchNorm) -> nn.Module:
    plain = _BatchNormXd(
        sync.num_features, eps=sync.eps, momentum=sync.momentum, affine=sync.affine,
        track_running_stats=sync.track_running_stats,
    )
    if sync.affine:
        plain.weight, plain.bias = sync.weight, sync.bias
    plain.running_mean = sync.running_mean
    plain.running_var = sync.running_var
    plain.num_batches_tracked = sync.num_batches_tracked
    plain.train(sync.training)
    for name, child in sync.named_children():  # nothing in torch's own, but subclasses may add some
        plain.add_module(name, revert_sync_batchnorm(child))
    if hasattr(sync, "qconfig"):
        plain.qconfig = sync.qconfig
    return plain
