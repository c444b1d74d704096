"""Starting the process group under torchrun."""

from __future__ import annotations

import datetime
import os
import warnings

import torch
import torch.distributed as torch_dist

from minirunner.utils import ConfigError

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def init_dist(launcher: str, backend: str | None = None, timeout: int | float | None = None) -> None:
    """Join the process group that torchrun set up in this process's environment.

    Args:
        launcher: 'pytorch' (torchrun); 'none' does nothing.
        backend: 'nccl' or 'gloo'; None picks NCCL with CUDA and gloo without. 'nccl' on a
            machine without CUDA falls back to gloo with a warning, so GPU configs run on CPU.
        timeout: seconds to wait for other ranks in collectives.
    """
    if launcher == "none":
        return
    if launcher != "pytorch":
        raise ConfigError(f"launcher must be 'none' or 'pytorch', got {launcher!r}", key="launcher")
    missing = [name for name in _TORCHRUN_VARIABLES if name not in os.environ]
    if missing:
        raise ConfigError(
            f"launcher='pytorch' needs torchrun's environment, but {', '.join(missing)} "
            "is not set. Start the job with torchrun, e.g. "
            "`torchrun --nproc_per_node=2 tools/train.py CONFIG --launcher pytorch` "
            "(or tools/dist_train.sh CONFIG 2), or use --launcher none for one process",
            key="launcher",
        )
    if torch_dist.is_initialized():
        return
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        warnings.warn("env_cfg.dist_cfg.backend='nccl' needs CUDA, which this machine lacks; using gloo")
        backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    kwargs = {}
    if timeout is not None:
        kwargs["timeout"] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(backend=backend, **kwargs)
