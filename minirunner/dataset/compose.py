"""`Compose`: a data pipeline, the transforms of a dataset applied in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from minirunner.registry import TRANSFORMS, config_key

from .errors import DatasetTypeError


class Compose:
    """Apply transforms one after another; a transform returning None stops the pipeline
    (the dataset then fetches another sample).

    Args:
        transforms: dict configs built from ``TRANSFORMS``, or callables. None is empty.

    Example:
        >>> pipeline = Compose([lambda d: dict(d, x=d['x'] + 1), lambda d: dict(d, y=2)])
        >>> pipeline(dict(x=1))
        {'x': 2, 'y': 2}
    """

    def __init__(self, transforms: Sequence[Mapping | Callable] | None) -> None:
        self.transforms: list[Callable] = []
        for index, transform in enumerate(transforms or []):
            if isinstance(transform, Mapping):
                with config_key(f"pipeline[{index}]"):
                    transform = TRANSFORMS.build(transform)
                if not callable(transform):
                    raise DatasetTypeError(
                        f"built a {type(transform).__name__}, which is not callable; a "
                        "transform must be a callable object", key=f"pipeline[{index}]"
                    )
            elif not callable(transform):
                raise DatasetTypeError(
                    f"must be a transform config dict or a callable, got "
                    f"{type(transform).__name__}", key=f"pipeline[{index}]"
                )
            self.transforms.append(transform)

    def __call__(self, data: Any) -> Any:
        """Run ``data`` through every transform; None as soon as one returns None."""
        for transform in self.transforms:
            data = transform(data)
            if data is None:
                return None
        return data

    def __repr__(self) -> str:
        lines = "".join(f"\n    {transform}" for transform in self.transforms)
        return f"{type(self).__name__}({lines}\n)"
