"""What a run prints about itself when it starts: its environment and its parameter groups."""

from __future__ import annotations

import io
import platform
import sys
from typing import Any

import torch
from torch import nn


def collect_env() -> dict[str, str]:
    """Versions and hardware: Python, platform, torch, minirunner, CUDA and cuDNN, GPUs, CPU threads."""
    from minirunner import __version__ as minirunner_version

    env = {
        "Python": sys.version.split()[0],
        "platform": platform.platform(),
        "PyTorch": torch.__version__,
        "minirunner": minirunner_version,
        "CPU threads": str(torch.get_num_threads()),
        "CUDA available": str(torch.cuda.is_available()),
    }
    if torch.cuda.is_available():
        env["CUDA"] = str(torch.version.cuda)
        env["cuDNN"] = str(torch.backends.cudnn.version())
        names: dict[str, list[int]] = {}
        for index in range(torch.cuda.device_count()):
            names.setdefault(torch.cuda.get_device_name(index), []).append(index)
        for name, indexes in names.items():
            env[f"GPU {','.join(map(str, indexes))}"] = name
    return env


def format_environment(env: dict[str, Any], runtime: dict[str, Any]) -> str:
    """Two indented blocks, ``System environment`` (e.g. :func:`collect_env`) and ``Runtime
    environment`` (device, world size, seed, ...), between rules, as plain text."""
    rule = "-" * 60
    lines = [rule, "System environment:"]
    lines += [f"    {key}: {value}" for key, value in env.items()]
    lines.append("Runtime environment:")
    lines += [f"    {key}: {value}" for key, value in runtime.items()]
    lines.append(rule)
    return "\n".join(lines)


def format_param_groups(model: nn.Module, optim_wrapper: Any) -> str:
    """The optimizer's parameter groups as a text table (rich, no colour codes).

    Groups of one optimizer that share lr, weight decay and momentum are one row, so a model
    with one group per parameter (``paramwise_cfg``) still gives a short table. Columns:
    optimizer, group indexes, parameter names (the first three), number of parameter
    elements, lr, weight decay, momentum (``betas[0]`` for Adam-style optimizers).
    """
    from rich.console import Console
    from rich.table import Table

    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    names = {id(p): n for n, p in module.named_parameters()}
    wrappers = optim_wrapper.items() if hasattr(optim_wrapper, "items") else [("", optim_wrapper)]
    table = Table(show_lines=False)
    for column in ("optimizer", "groups", "parameters", "numel", "lr", "weight_decay", "momentum"):
        table.add_column(column, justify="right" if column == "numel" else "left")
    for name, wrapper in wrappers:
        label = name or type(wrapper.optimizer).__name__
        rows: dict[tuple, dict] = {}  # settings -> the groups that share them, in order
        for index, group in enumerate(wrapper.param_groups):
            if not group["params"]:
                # The wrapper's record of the optimizer's defaults (base_lr), not a group that
                # trains anything: listing it made users look for a parameter group that is not there.
                continue
            momentum = group.get("momentum", group.get("betas", (None,))[0])
            settings = (
                f"{group['lr']:.4g}", f"{group.get('weight_decay', 0):.4g}",
                "-" if momentum is None else f"{momentum:.4g}",
            )
            row = rows.setdefault(settings, {"indexes": [], "params": []})
            row["indexes"].append(index)
            row["params"].extend(group["params"])
        for (lr, decay, momentum), row in rows.items():
            params = [names.get(id(p), "?") for p in row["params"]]
            shown = ", ".join(params[:3]) + (f" (+{len(params) - 3})" if len(params) > 3 else "")
            numel = sum(p.numel() for p in row["params"])
            table.add_row(label, _ranges(row["indexes"]), shown, f"{numel:,}", lr, decay, momentum)
    buffer = io.StringIO()
    # A fixed width: the same text on every machine, in the console and in the log file.
    Console(file=buffer, width=120, color_system=None).print(table)
    return buffer.getvalue().rstrip("\n")


def _ranges(indexes: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2, 5'``."""
    parts: list[str] = []
    start = previous = indexes[0]
    for index in indexes[1:] + [None]:  # type: ignore[list-item]
        if index is not None and index == previous + 1:
            previous = index
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    return ", ".join(parts)
