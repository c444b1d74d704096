"""`Visualizer`: fans scalars out to its backends."""

from __future__ import annotations

from typing import Any

from minirunner.registry import VISBACKENDS, VISUALIZERS, config_key


@VISUALIZERS.register_module()
class Visualizer:
    """Sends scalars to every backend in ``vis_backends`` (default: :class:`LocalVisBackend`).

    The newest visualizer is also reachable with :meth:`get_current_instance`, for code that
    cannot reach the runner.

    Args:
        name: a name for this visualizer.
        vis_backends: backend configs, e.g. ``[dict(type='LocalVisBackend'),
            dict(type='TensorboardVisBackend')]``.
        save_dir: the folder backends write under (the runner passes its log dir; None on
            ranks other than 0, where nothing is written).

    Example:
        >>> visualizer = Visualizer(save_dir='work_dirs/demo')  # doctest: +SKIP
        >>> visualizer.add_scalars({'loss': 0.5, 'lr': 0.1}, step=10)  # doctest: +SKIP
    """

    _current: "Visualizer | None" = None

    def __init__(self, name: str = "visualizer", vis_backends: list[dict] | None = None, save_dir: str | None = None) -> None:
        self.name = name
        self.backends: list[Any] = []
        Visualizer._current = self
        if save_dir is None:
            return  # Not on rank 0, or no run folder: nothing is written.
        for index, cfg in enumerate(vis_backends if vis_backends is not None else [dict(type="LocalVisBackend")]):
            # The runner adds the leading 'visualizer.' to the key path.
            with config_key(f"vis_backends.{index}"):
                self.backends.append(VISBACKENDS.build(cfg, default_args=dict(save_dir=save_dir)))

    @classmethod
    def get_current_instance(cls) -> "Visualizer":
        """The newest visualizer (the running Runner's); a backend-less one if none exists."""
        if cls._current is None:
            cls._current = Visualizer()
        return cls._current

    def add_scalars(self, scalars: dict[str, Any], step: int = 0) -> None:
        """Send ``scalars`` at ``step`` to every backend."""
        for backend in self.backends:
            backend.add_scalars(scalars, step=step)

    def add_scalar(self, name: str, value: Any, step: int = 0) -> None:
        """Send one scalar at ``step`` to every backend."""
        self.add_scalars({name: value}, step=step)

    def add_config(self, config: Any) -> None:
        """Give the run's config to every backend that records one."""
        for backend in self.backends:
            add_config = getattr(backend, "add_config", None)
            if add_config is not None:
                add_config(config)

    def close(self) -> None:
        """Close every backend."""
        for backend in self.backends:
            backend.close()
