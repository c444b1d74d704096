"""Optimizer wrapper constructors: from a model and an ``optim_wrapper`` config to a wrapper.

``build_optim_wrapper(model, cfg)`` is the entry point; ``DefaultOptimWrapperConstructor``
applies ``paramwise_cfg``; ``MultiOptimWrapperConstructor`` builds one optimizer per
submodule. Custom constructors are registered in ``OPTIM_WRAPPER_CONSTRUCTORS``.
"""

from .default_constructor import DefaultOptimWrapperConstructor
from .builder import build_optim_wrapper
from .multi_constructor import MultiOptimWrapperConstructor

__all__ = ["DefaultOptimWrapperConstructor", "MultiOptimWrapperConstructor", "build_optim_wrapper"]
