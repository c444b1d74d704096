"""Gradient accumulation across a checkpoint: a run saved part-way through an accumulation
window keeps the window's gradients, and a resume puts them back, so the window ends with the
same step as if the run had not stopped."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from minirunner import dist


def accumulating_wrappers(optim_wrapper: Any) -> list[tuple[str, Any]]:
    """The built optimizer wrappers that count accumulation, by name ('' for a single one);
    [] before building or for a wrapper class of its own kind."""
    if optim_wrapper is None or isinstance(optim_wrapper, dict):
        return []
    if hasattr(optim_wrapper, "inner_count"):
        found = [("", optim_wrapper)]
    elif hasattr(optim_wrapper, "__getitem__") and hasattr(optim_wrapper, "__iter__"):
        found = [(name, optim_wrapper[name]) for name in optim_wrapper]
    else:
        return []
    return [(name, w) for name, w in found if hasattr(w, "inner_count") and hasattr(w, "accumulative_counts")]


def inside_window(wrapper: Any) -> bool:
    """Whether ``wrapper`` is part-way through an accumulation window (it has not stepped yet)."""
    count = wrapper.inner_count
    return count % wrapper.accumulative_counts != 0 and count != wrapper.max_counts


def _one_or_list(values: list) -> Any:
    return values[0] if len(values) == 1 else values


def accumulated_grads(model: nn.Module) -> dict[str, torch.Tensor]:
    """The gradients summed so far in the current window, by parameter name (their mean over
    the ranks when distributed)."""
    grads = {}
    for name, param in model.named_parameters():
        if param.grad is not None:
            grads[name] = param.grad.detach()
    if dist.is_distributed():
        # Each rank holds its own partial sums (no_sync); their mean, restored on every
        # rank, makes the window's final all-reduce give the same mean gradient.
        grads = {name: dist.all_reduce(grad.clone(), op="mean") for name, grad in grads.items()}
    return grads


def restore_accumulation(model: nn.Module, optim_wrapper: Any, checkpoint: dict) -> list[str]:
    """Put a checkpoint's window gradients back on ``model``'s parameters; returns notes on what
    could not be restored (another ``accumulative_counts``, parameters that no longer match)."""
    saved = checkpoint.get("accumulation")
    grads = checkpoint.get("grads")
    wrappers = accumulating_wrappers(optim_wrapper)
    if not saved or not wrappers:
        return []
    notes = []
    counts = [w.accumulative_counts for _, w in wrappers]
    if list(saved["accumulative_counts"]) != counts:
        dropped = "; the gradients of the unfinished window are dropped" if grads else ""
        notes.append(
            f"accumulative_counts {_one_or_list(counts)} from the config (the checkpoint's run used "
            f"{_one_or_list(saved['accumulative_counts'])}){dropped}"
        )
        return notes
    if grads:
        params = dict(model.named_parameters())
        unmatched = [name for name, grad in grads.items() if name not in params or params[name].shape != grad.shape]
        for name, grad in grads.items():
            if name not in unmatched:
                param = params[name]
                param.grad = grad.to(device=param.device, dtype=param.dtype)
        if unmatched:
            notes.append(f"saved gradients without a matching parameter were dropped: {', '.join(unmatched)}")
    return notes
