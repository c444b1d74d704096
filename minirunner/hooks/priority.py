"""Hook priorities: a lower number runs earlier."""

from __future__ import annotations

from minirunner.utils import ConfigError, did_you_mean

PRIORITIES = {
    "HIGHEST": 0,
    "VERY_HIGH": 10,
    "HIGH": 30,
    "ABOVE_NORMAL": 40,
    "NORMAL": 50,
    "BELOW_NORMAL": 60,
    "LOW": 70,
    "VERY_LOW": 90,
    "LOWEST": 100,
}


def get_priority(priority: int | str) -> int:
    """Turn a priority name (``'VERY_LOW'``) or an int in 0..100 into an int."""
    if isinstance(priority, bool):
        raise ConfigError(f"priority must be a name or an int in 0..100, got {priority!r}", key="priority")
    if isinstance(priority, int):
        if not 0 <= priority <= 100:
            raise ConfigError(f"priority must be in 0..100, got {priority}", key="priority")
        return priority
    if isinstance(priority, str) and priority.upper() in PRIORITIES:
        return PRIORITIES[priority.upper()]
    raise ConfigError(
        f"unknown priority {priority!r}.{did_you_mean(str(priority), PRIORITIES)} "
        f"Use one of {', '.join(PRIORITIES)} or an int in 0..100",
        key="priority",
    )
