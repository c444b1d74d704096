"""Optimizer wrappers: accumulation, clipping and mixed precision around a torch optimizer."""

from .amp_optimizer_wrapper import AmpOptimWrapper
from .optimizer_wrapper import OptimWrapper
from .optimizer_wrapper_dict import OptimWrapperDict

__all__ = ["OptimWrapper", "AmpOptimWrapper", "OptimWrapperDict"]
