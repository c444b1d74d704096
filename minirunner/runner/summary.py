"""A readable table of the optimizer's parameter groups."""

from __future__ import annotations

import io
from typing import Any

from torch import nn


def format_param_groups(model: nn.Module, optim_wrapper: Any) -> str:
    """The param groups as a text table: optimizer, group, parameters, lr, weight decay, momentum."""
    from rich.console import Console
    from rich.table import Table

    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    names = {id(p): n for n, p in module.named_parameters()}
    wrappers = optim_wrapper.items() if hasattr(optim_wrapper, "items") else [("", optim_wrapper)]
    table = Table(show_lines=False)
    for column in ("optimizer", "group", "parameters", "lr", "weight_decay", "momentum"):
        table.add_column(column)
    for name, wrapper in wrappers:
        for index, group in enumerate(wrapper.param_groups):
            params = [names.get(id(p), "?") for p in group["params"]]
            shown = ", ".join(params[:3]) + (f" (+{len(params) - 3})" if len(params) > 3 else "")
            # The wrapper lists the optimizer's defaults as a last, parameterless group (base_lr).
            shown = shown or "(defaults: base_lr)"
            momentum = group.get("momentum", group.get("betas", (None,))[0])
            table.add_row(
                name or type(wrapper.optimizer).__name__, str(index), shown, f"{group['lr']:.4g}",
                f"{group.get('weight_decay', 0):.4g}", "-" if momentum is None else f"{momentum:.4g}",
            )
    buffer = io.StringIO()
    Console(file=buffer, width=120, color_system=None).print(table)
    return buffer.getvalue()
