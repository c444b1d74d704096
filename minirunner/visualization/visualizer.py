"""`Visualizer`: fans scalars out to its backends."""

from __future__ import annotations

from typing import Any

from minirunner.registry import VISBACKENDS, VISUALIZERS, config_key


@VISUALIZERS.register_module()
class Visualizer:
    """Sends scalars to every backend in ``vis_backends`` (default: :class:`LocalVisBackend`).

    Args:
        name: a name for this visualizer.
        vis_backends: backend configs, e.g. ``[dict(type='LocalVisBackend')]``.
        save_dir: the folder backends write under (the runner passes its log dir).
    """

    def __init__(self, name: str = "visualizer", vis_backends: list[dict] | None = None, save_dir: str | None = None) -> None:
        self.name = name
        self.backends: list[Any] = []
        if save_dir is None:
            return  # Not on rank 0, or no run folder: nothing is written.
        for index, cfg in enumerate(vis_backends if vis_backends is not None else [dict(type="LocalVisBackend")]):
            with config_key(f"visualizer.vis_backends.{index}"):
                self.backends.append(VISBACKENDS.build(cfg, default_args=dict(save_dir=save_dir)))

    def add_scalars(self, scalars: dict[str, Any], step: int = 0) -> None:
        """Send ``scalars`` at ``step`` to every backend."""
        for backend in self.backends:
            backend.add_scalars(scalars, step=step)

    def close(self) -> None:
        """Close every backend."""
        for backend in self.backends:
            backend.close()
