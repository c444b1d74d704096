"""Starting the process group under torchrun."""

from __future__ import annotations

import datetime
import os
import warnings

import torch
import torch.distributed as torch_dist

from minirunner.utils import ConfigError, did_you_mean, quoted_list

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_LAUNCH_HINT = (
    "Start the job with torchrun, e.g. "
    "`torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch` "
    "(or `tools/dist_train.sh CONFIG 2`)"
)


def init_dist(launcher: str, backend: str | None = None, timeout: int | float | None = None) -> None:
    """Join the process group that torchrun set up in this process's environment.

    Does nothing when a default process group already exists (the caller made one).
    On CUDA machines each process uses the GPU numbered by its ``LOCAL_RANK``.

    Args:
        launcher: 'pytorch' (torchrun); 'none' runs one process and does nothing.
        backend: 'nccl', 'gloo' or another backend torch knows; None picks NCCL with CUDA
            and gloo without. 'nccl' on a machine without CUDA falls back to gloo with a
            warning, so GPU configs run on CPU.
        timeout: seconds a collective waits for the other ranks before failing.

    Raises:
        ConfigError: for an unknown launcher or backend, a bad timeout, 'pytorch' without
            torchrun's environment, or 'none' inside a torchrun job of several processes.

    Example:
        >>> init_dist('none')  # one process: nothing to join
    """
    if launcher not in ("none", "pytorch"):
        raise ConfigError(
            f"must be 'none' or 'pytorch' (started by torchrun), got {launcher!r}."
            f"{did_you_mean(str(launcher), ['none', 'pytorch'])}",
            key="launcher",
        )
    if torch_dist.is_available() and torch_dist.is_initialized():
        return
    if launcher == "none":
        world_size = os.environ.get("WORLD_SIZE", "1")
        if world_size.isdigit() and int(world_size) > 1:
            # Without this every process would train alone and all of them would write
            # into the same work dir.
            raise ConfigError(
                f"is 'none', but this process was started by torchrun with WORLD_SIZE={world_size}; "
                "pass --launcher pytorch (launcher='pytorch') so the processes train together",
                key="launcher",
            )
        return
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(
            f"'pytorch' needs the environment torchrun sets, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. {_LAUNCH_HINT}, "
            "or use --launcher none (launcher='none') for one process",
            key="launcher",
        )
    backend = _check_backend(backend)
    kwargs = {}
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(
                f"must be a positive number of seconds, got {timeout!r}", key="env_cfg.dist_cfg.timeout"
            )
        kwargs["timeout"] = datetime.timedelta(seconds=timeout)
    if torch.cuda.is_available():
        # Before the process group starts: NCCL binds each rank to the current device.
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    torch_dist.init_process_group(backend=backend, **kwargs)


def _check_backend(backend: str | None) -> str:
    """The backend to use: the configured one, checked, with NCCL falling back to gloo on CPU."""
    if backend is None:
        return "nccl" if torch.cuda.is_available() else "gloo"
    known = [name for name in torch_dist.Backend.backend_list if name not in ("undefined", "fake")]
    if isinstance(backend, str) and ":" in backend:
        return backend  # per-device backends, 'cpu:gloo,cuda:nccl': torch checks them
    if not isinstance(backend, str) or backend.lower() not in known:
        raise ConfigError(
            f"{backend!r} is not a process-group backend.{did_you_mean(str(backend), known)} "
            f"Known: {quoted_list(known)}; 'nccl' for GPUs, 'gloo' for CPUs",
            key="env_cfg.dist_cfg.backend",
        )
    backend = backend.lower()
    if backend == "nccl" and not torch.cuda.is_available():
        warnings.warn(
            "env_cfg.dist_cfg.backend='nccl' needs CUDA, which this machine lacks; using 'gloo' instead",
            stacklevel=3,
        )
        return "gloo"
    return backend
