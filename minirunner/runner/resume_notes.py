"""What a resume restores beyond the weights, and the notes on every setting where the
checkpoint's run and this config differ (so a resumed run never changes silently)."""

from __future__ import annotations

from typing import Any

from minirunner import dist

from .accumulation_state import accumulating_wrappers

# Scheduler state entries that record progress rather than settings.
_SCHEDULER_PROGRESS = frozenset({"last_step", "best", "num_bad_epochs", "cooldown_counter", "verbose"})


def _run_length_notes(counters: dict, loop: Any, epoch: int) -> list[str]:
    notes = []
    by_epoch = hasattr(loop, "run_epoch")
    key, value = ("max_epochs", loop.max_epochs) if by_epoch else ("max_iters", loop.max_iters)
    saved = counters.get(key)
    if saved is not None and saved != value:
        notes.append(f"{key} {value} from the config (the checkpoint's run had {saved})")
    if by_epoch and epoch >= loop.max_epochs:
        notes.append(f"the checkpoint is at epoch {epoch}, max_epochs is {loop.max_epochs}: nothing is left to train")
    return notes


def _optimizer_settings(optim_wrapper: Any) -> dict[str, Any]:
    """Each param group's hyper-parameters: the base value (``initial_*``) where a
    scheduler changes one, else the value."""
    settings = {}
    for name, wrapper in accumulating_wrappers(optim_wrapper):
        for index, group in enumerate(getattr(getattr(wrapper, "optimizer", None), "param_groups", [])):
            for key, value in group.items():
                if key == "params" or key.startswith("initial_"):
                    continue
                value = group.get(f"initial_{key}", value)
                if isinstance(value, (bool, int, float, str, tuple, list)) or value is None:
                    settings[f"{name + '.' if name else ''}group {index} {key}"] = value
    return settings


def _changed(what: str, config: dict, checkpoint: dict) -> list[str]:
    return [
        f"{what} {key} {checkpoint[key]!r} from the checkpoint (the config gives {config[key]!r})"
        for key in config
        if key in checkpoint and config[key] != checkpoint[key]
    ]


def _scheduler_states(schedulers: Any) -> Any:
    if isinstance(schedulers, dict):
        return {name: [s.state_dict() for s in group] for name, group in schedulers.items()}
    return [s.state_dict() for s in schedulers]


def _load_scheduler_states(schedulers: Any, states: Any) -> list[str]:
    """Load the schedulers' states; notes on every setting the checkpoint changes."""
    if isinstance(schedulers, dict):
        pairs = [(f"param_scheduler.{name}", group, (states or {}).get(name, [])) for name, group in schedulers.items()]
    else:
        pairs = [("param_scheduler", schedulers, states)]
    notes = []
    for label, group, saved in pairs:
        if len(saved) != len(group):
            notes.append(
                f"{label}: the config has {len(group)} scheduler(s), the checkpoint {len(saved)}; "
                f"the first {min(len(saved), len(group))} continue from the checkpoint, the rest start afresh"
            )
        for index, (scheduler, state) in enumerate(zip(group, saved)):
            fresh = scheduler.state_dict()
            scheduler.load_state_dict(state)
            for key, value in fresh.items():
                if key.startswith("_") or key in _SCHEDULER_PROGRESS or key not in state or state[key] == value:
                    continue
                notes.append(
                    f"{label}[{index}] {type(scheduler).__name__} {key}={state[key]!r} from the checkpoint "
                    f"(the config gives {value!r}); the schedule continues as it was saved"
                )
    return notes


def global_batch_notes(saved: dict | None, loop: Any) -> list[str]:
    """A note when the global batch (batch size x world size) differs from the checkpoint's
    run: with another number of processes, keep it by changing the batch size per process."""
    batch_size = getattr(loop.dataloader, "batch_size", None)
    if not saved or saved.get("batch_size") is None or batch_size is None:
        return []
    before = int(saved["batch_size"]) * int(saved.get("world_size") or 1)
    now = batch_size * dist.get_world_size()
    if before == now:
        return []
    return [
        f"the global batch changes from {before} to {now} (batch_size x world size): training will not continue "
        "as the checkpoint's run would have; set batch_size so that the global batch stays the same"
    ]
