"""``torch.compile`` for the runner: the ``compile`` config key, compiling a model's forward
in place, pointing inductor's caches into the run, and reading what dynamo did.

We compile the model's ``__call__`` (what ``nn.Module.compile()`` does) rather than wrapping
the model in an ``OptimizedModule``: parameter and state-dict names stay those of the plain
model (no ``_orig_mod.``), every path that calls the model (``train_step``, ``val_step``,
``test_step``, DDP's forward) runs the compiled code, and nothing that unwraps models
needs to know about compiling.
"""

from __future__ import annotations

import inspect
import os
import time
from collections import Counter
from typing import Any

import torch
from torch import nn

from minirunner.logging import print_log
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .wrappers import is_model_wrapper

# The keyword arguments of torch.compile that a config may set (MMEngine passes its
# ``compile`` dict to torch.compile in the same way): those of the installed torch.
COMPILE_KEYS = tuple(name for name in inspect.signature(torch.compile).parameters if name != "model")
_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_options(value: Any) -> dict[str, Any] | None:
    """The keyword arguments for ``torch.compile`` that the config key ``compile`` asks for,
    or None when it asks for no compiling (False, None, absent).

    ``True`` means torch's defaults (the inductor backend); a dict sets any of
    :data:`COMPILE_KEYS`. Bad values raise a :class:`ConfigError` naming ``compile.<key>``.

    Example:
        >>> compile_options(dict(backend='aot_eager', dynamic=False))
        {'backend': 'aot_eager', 'dynamic': False}
    """
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"must be True, False or a dict of torch.compile arguments ({', '.join(COMPILE_KEYS)}), "
            f"got {value!r}",
            key="compile",
        )
    options = dict(value)
    for key in options:
        if key not in COMPILE_KEYS:
            raise ConfigError(
                f"'{key}' is not an argument of torch.compile.{did_you_mean(key, COMPILE_KEYS)} "
                f"Accepted: {quoted_list(COMPILE_KEYS)}",
                key=f"compile.{key}",
            )
    backend = options.get("backend") or "inductor"
    if isinstance(backend, str):
        known = torch.compiler.list_backends(exclude_tags=())
        if backend not in known:
            raise ConfigError(
                f"'{backend}' is not a torch.compile backend.{did_you_mean(backend, known)} "
                f"Known: {quoted_list(known)}",
                key="compile.backend",
            )
    elif not callable(backend):
        raise ConfigError(f"must be a backend name or a callable, got {backend!r}", key="compile.backend")
    if options.get("mode") not in _MODES:
        raise ConfigError(
            f"'{options['mode']}' is not a compile mode.{did_you_mean(str(options['mode']), _MODES[1:])} "
            f"Accepted: {quoted_list(_MODES[1:])}",
            key="compile.mode",
        )
    if options.get("mode") is not None and options.get("options") is not None:
        raise ConfigError("torch.compile takes mode or options, not both; remove one", key="compile.options")
    if options.get("options") is not None and not isinstance(options["options"], dict):
        raise ConfigError(f"must be a dict of inductor settings, got {options['options']!r}", key="compile.options")
    if options.get("dynamic") not in (None, True, False):
        raise ConfigError(f"must be True, False or None (decide per shape), got {options['dynamic']!r}", key="compile.dynamic")
    for key in ("fullgraph", "disable"):
        if not isinstance(options.get(key, False), bool):
            raise ConfigError(f"must be True or False, got {options[key]!r}", key=f"compile.{key}")
    return options


def compile_cache_folder(work_dir: str) -> str:
    """Where a run keeps inductor's and triton's caches: ``<work_dir>/compile_cache``."""
    return os.path.join(os.path.abspath(work_dir), "compile_cache")


def _inner_module(model: nn.Module) -> nn.Module:
    """``model`` with its distributed wrappers (DDP, registered model wrappers) taken off."""
    while isinstance(model, nn.parallel.DistributedDataParallel) or is_model_wrapper(model):
        model = model.module
    return model


def compile_if_configured(model: nn.Module, value: Any, work_dir: str) -> nn.Module:
    """``model`` compiled as the config key ``compile`` (``value``) asks (see
    :func:`compile_options`), with the caches in ``<work_dir>/compile_cache``; unchanged when
    it asks for nothing."""
    options = compile_options(value)
    if options is None:
        return model
    cache = compile_cache_folder(work_dir)
    compile_model(model, options, cache)
    settings = ", ".join(f"{key}={option!r}" for key, option in options.items()) or "torch's defaults"
    print_log(
        f"torch.compile: the model's forward compiles on its first call ({settings}); caches in {cache}",
        logger="current",
    )
    return model


def compile_model(model: nn.Module, options: dict[str, Any], cache_folder: str) -> nn.Module:
    """Compile the forward of ``model`` (its wrapped module, when it is wrapped) in place with
    ``torch.compile(**options)``, and return ``model``; inductor and triton keep their caches
    in ``cache_folder``.

    This is where PyTorch's guide ("Where to apply torch.compile?") puts it: the inner module,
    not the DDP wrapper. DDP's own forward stays eager and calls the compiled module while it
    marks itself active, so dynamo still splits the graph at DDP's bucket boundaries (its
    DDPOptimizer) and gradients are reduced while the backward pass runs. The parameters
    keep their names. A copy of the module (``copy.deepcopy``, as EMA makes) is not
    compiled: torch leaves the compiled call out of copies.
    """
    _point_caches(cache_folder)
    module = _inner_module(model)
    try:
        module.compile(**_without_global_headers(options))
    except (TypeError, ValueError, RuntimeError) as error:  # torch.compile's checks of its arguments
        raise ConfigError(f"torch.compile refused {options}: {error}", key="compile") from error
    return model


def _point_caches(folder: str) -> None:
    # Set before the first compile, and again for every run: inductor reads the variables
    # when it writes, and writes the folder it used back into TORCHINDUCTOR_CACHE_DIR, so a
    # second run in the same process would otherwise write into the first run's folder.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
    os.environ["TRITON_CACHE_DIR"] = os.path.join(folder, "triton")


def _without_global_headers(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with inductor's precompiled C++ headers turned off: inductor keeps them in
    ``/tmp/torchinductor_<user>`` whatever its cache folder. A ``mode`` becomes the inductor
    settings it stands for, since torch.compile takes ``mode`` or ``options``, not both."""
    backend = options.get("backend") or "inductor"
    if backend != "inductor" or "cpp_cache_precompile_headers" in (options.get("options") or {}):
        return options
    options = dict(options)
    settings = dict(options.pop("options", None) or {})
    mode = options.pop("mode", None)
    if mode is not None:
        settings = {**torch._inductor.list_mode_options(mode, options.get("dynamic")), **settings}
    settings["cpp_cache_precompile_headers"] = False
    options["options"] = settings
    return options


def is_compiled(model: nn.Module) -> bool:
    """True when the forward of ``model`` (or of the module it wraps), or of one of its
    submodules (FSDPStrategy compiles block by block), is compiled in place."""
    return any(getattr(module, "_compiled_call_impl", None) is not None for module in _inner_module(model).modules())


class CompileWatch:
    """What dynamo did since this watch was made: seconds spent compiling, graph breaks and
    recompiles with their reasons.

    Dynamo's counters (``torch._dynamo.utils.counters``) and compilation metrics are private
    API: whatever a torch version lacks reads as nothing, never as an error.
    """

    def __init__(self) -> None:
        self._since_us = time.time_ns() // 1000
        self._breaks_before = _dynamo_counter("graph_break")
        self._counters = _dynamo_counters()  # read every iteration: looked up, not copied
        self._frames_before = self._frames_ok()

    def compile_seconds(self) -> float | None:
        """Seconds spent compiling (forward and backward graphs) so far, or None if unknown."""
        metrics = self._metrics()
        if metrics is None:
            return None
        total = 0.0
        for entry in metrics:
            start, end = getattr(entry, "start_time_us", None), getattr(entry, "end_time_us", None)
            if isinstance(start, int) and isinstance(end, int):
                total += (end - start) / 1e6
        return total

    def frames_compiled(self) -> int:
        """How many Python frames dynamo compiled since the watch started (recompiles count)."""
        return self._frames_ok() - self._frames_before

    def _frames_ok(self) -> int:
        return self._counters.get("frames", {}).get("ok", 0)

    def graph_breaks(self) -> dict[str, int]:
        """Each graph-break reason dynamo met since the watch started, with how often."""
        counter = _dynamo_counter("graph_break")
        counter.subtract(self._breaks_before)
        return {reason: count for reason, count in counter.items() if count > 0}

    def recompiles(self) -> list[str]:
        """Each recompile since the watch started: the function and the guard that failed."""
        return [
            f"{getattr(entry, 'co_name', None) or 'a frame'}: {entry.recompile_reason}"
            for entry in self._metrics() or []
            if getattr(entry, "recompile_reason", None)
        ]

    def summary(self) -> str:
        """One paragraph for the log: the counts, then each reason on a line of its own."""
        breaks, recompiles = self.graph_breaks(), self.recompiles()
        text = (
            f"{self.frames_compiled()} frame(s) compiled, {sum(breaks.values())} graph break(s), "
            f"{len(recompiles)} recompile(s)"
        )
        for reason, count in breaks.items():
            text += f"\n  graph break ({count}x): {_one_line(reason)}"
        for reason in recompiles:
            text += f"\n  recompile: {_one_line(reason)}"
        return text

    def _metrics(self) -> list | None:
        try:
            from torch._dynamo.utils import get_compilation_metrics

            metrics = get_compilation_metrics()
        except (ImportError, AttributeError):
            return None
        return [m for m in metrics if (getattr(m, "start_time_us", None) or 0) >= self._since_us]


def _dynamo_counters() -> dict:
    """Dynamo's counters (a dict of Counters; empty where this torch has none)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return counters


def _dynamo_counter(name: str) -> Counter:
    """A copy of dynamo's counter ``name``."""
    return Counter(_dynamo_counters().get(name, {}))


def _one_line(reason: str) -> str:
    lines = [line.strip() for line in str(reason).splitlines() if line.strip()]
    return " | ".join(lines)[:500]
