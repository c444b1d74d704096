"""The run's config in the shapes trackers store: a nested plain dict, or flat ``a.b.c`` params."""

from __future__ import annotations

from typing import Any


def config_as_dict(config: Any, keys: list[str] | None = None) -> dict[str, Any]:
    """The config as nested plain values (dicts, lists, numbers, strings); only the top-level
    ``keys`` when given (a missing key is an error naming the keys there are)."""
    whole = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if keys is not None:
        missing = [key for key in keys if key not in whole]
        if missing:
            raise KeyError(
                f"{', '.join(map(repr, missing))} not in the config; "
                f"its top-level keys are {', '.join(sorted(whole))}"
            )
        whole = {key: whole[key] for key in keys}
    return {str(key): plain_value(value) for key, value in whole.items()}


def plain_value(value: Any) -> Any:
    """``value`` with tuples as lists and anything that is not a plain type as its ``repr``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(key): plain_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(item) for item in value]
    return repr(value)


def flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` as ``{'a.b': 1}``; lists stay whole (as one value)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
