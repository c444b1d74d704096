"""`hookless`: when calling a module's ``forward`` does exactly what calling the module does.

``module(x)`` goes through ``nn.Module.__call__``: two Python frames and a test of eight hook
dicts before it reaches ``forward``. On a small model, run every iteration for the data
preprocessor and the model, that is a measurable part of the Runner's own work. When no
hook of any kind is registered (on the module or globally), the module is not compiled, not
being traced and does not override ``__call__``, ``module.forward(x)`` is the same call
without the detour, so :meth:`BaseModel.train_step` makes it. The test runs on every call,
so a hook registered at any time is still called.

The test reads torch's private hook registries; with a torch that lacks any of them, it
answers False and every call goes through ``__call__``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as _torch_module

# The global registries ``nn.Module.__call__`` consults (names as in torch 2.x); looked up
# on the module at each call, as torch itself does, in case one is ever rebound.
_GLOBAL_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)
# Per-module state that makes ``__call__`` do more than call ``forward``.
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")

_tracing_state = getattr(torch._C, "_get_tracing_state", None)


def _registries_known() -> bool:
    """Whether this torch has every private attribute the test reads."""
    probe = nn.Module()
    return (
        _tracing_state is not None
        and all(isinstance(getattr(_torch_module, name, None), dict) for name in _GLOBAL_HOOKS)
        and all(isinstance(probe.__dict__.get(name), dict) for name in _MODULE_HOOKS)
        and "_compiled_call_impl" in vars(nn.Module)  # None there; compile() sets it on the instance
    )


_SUPPORTED = _registries_known()
_MODULE_CALL = nn.Module.__call__


def hookless(first: nn.Module, second: nn.Module) -> bool:
    """True when ``first.forward(...)`` and ``second.forward(...)`` may replace calling them.

    That is: neither has a forward, forward pre-, backward or backward pre-hook, none is
    registered globally (``register_module_forward_hook`` and the like), neither is compiled
    with ``nn.Module.compile()``, neither class overrides ``__call__``, and no
    ``torch.jit.trace`` is running. False on a torch whose private hook registries this
    does not know.

    Example:
        >>> a, b = nn.Linear(2, 2), nn.ReLU()
        >>> hookless(a, b)
        True
        >>> handle = b.register_forward_hook(lambda module, args, output: None)
        >>> hookless(a, b)
        False
        >>> handle.remove()
    """
    # Written out rather than looped over the names: this runs on every training iteration.
    if not _SUPPORTED:
        return False
    registry = _torch_module
    if (
        registry._global_forward_hooks
        or registry._global_forward_pre_hooks
        or registry._global_backward_hooks
        or registry._global_backward_pre_hooks
        or _tracing_state()
    ):
        return False
    try:
        for module in (first, second):
            state = module.__dict__
            if (
                type(module).__call__ is not _MODULE_CALL
                or module._compiled_call_impl is not None
                or state["_forward_hooks"]
                or state["_forward_pre_hooks"]
                or state["_backward_hooks"]
                or state["_backward_pre_hooks"]
            ):
                return False
    except KeyError:  # a module whose state lacks one (not set up by nn.Module.__init__)
        return False
    return True
