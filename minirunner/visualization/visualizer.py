"""`Visualizer`: fans scalars out to its backends."""

from __future__ import annotations

import inspect
from typing import Any

from minirunner.registry import VISBACKENDS, VISUALIZERS, config_key
from minirunner.utils import ConfigError


@VISUALIZERS.register_module()
class Visualizer:
    """Sends scalars to every backend in ``vis_backends`` (default: :class:`LocalVisBackend`).

    The newest visualizer is also reachable with :meth:`get_current_instance`, for code that
    cannot reach the runner.

    Args:
        name: a name for this visualizer.
        vis_backends: backend configs, e.g. ``[dict(type='LocalVisBackend'),
            dict(type='TensorboardVisBackend'), dict(type='MLflowVisBackend')]``; a ``name``
            key names a backend for :meth:`get_backend` (default: its class name).
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
        self._by_name: dict[str, Any] = {}
        # Backends written before ``global_iter`` existed (no **kwargs) are called without it.
        self._takes_global_iter: list[bool] = []
        Visualizer._current = self
        if save_dir is None:
            return  # Not on rank 0, or no run folder: nothing is written.
        for index, cfg in enumerate(vis_backends if vis_backends is not None else [dict(type="LocalVisBackend")]):
            # The runner adds the leading 'visualizer.' to the key path.
            with config_key(f"vis_backends.{index}"):
                cfg = dict(cfg)
                name = cfg.pop("name", None)
                backend = VISBACKENDS.build(cfg, default_args=dict(save_dir=save_dir))
                name = name or type(backend).__name__
                if name in self._by_name:
                    raise ConfigError(
                        f"two backends are named {name!r}; give one of them another name with a 'name' key"
                    )
            self._by_name[name] = backend
            self.backends.append(backend)
            self._takes_global_iter.append(_accepts(backend.add_scalars, "global_iter"))

    @classmethod
    def get_current_instance(cls) -> "Visualizer":
        """The newest visualizer (the running Runner's); a backend-less one if none exists."""
        if cls._current is None:
            cls._current = Visualizer()
        return cls._current

    def get_backend(self, name: str) -> Any:
        """The backend named ``name`` (its ``name`` key or class name), or None.

        Example:
            >>> client = runner.visualizer.get_backend('MLflowVisBackend').experiment  # doctest: +SKIP
        """
        return self._by_name.get(name)

    def add_scalars(
        self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, global_iter: int | None = None
    ) -> None:
        """Send ``scalar_dict`` at ``step`` to every backend.

        ``global_iter`` is the global iteration the scalars belong to (the runner always gives
        it): ``scalars.json`` records it as ``iter`` and the trackers plot at it, so training
        and validation curves share one axis.
        """
        for backend, takes_global_iter in zip(self.backends, self._takes_global_iter):
            if takes_global_iter and global_iter is not None:
                backend.add_scalars(scalar_dict, step=step, file_path=file_path, global_iter=global_iter)
            elif file_path is not None:
                backend.add_scalars(scalar_dict, step=step, file_path=file_path)
            else:
                backend.add_scalars(scalar_dict, step=step)

    def add_scalar(self, name: str, value: Any, step: int = 0, global_iter: int | None = None) -> None:
        """Send one scalar at ``step`` to every backend."""
        self.add_scalars({name: value}, step=step, global_iter=global_iter)

    def add_config(self, config: Any) -> None:
        """Give the run's config to every backend that records one (a backend may refuse it
        with a ConfigError: ``tracked_config_keys`` naming keys the config lacks)."""
        for index, backend in enumerate(self.backends):
            add_config = getattr(backend, "add_config", None)
            if add_config is not None:
                with config_key(f"visualizer.vis_backends.{index}"):
                    add_config(config)

    def add_image(self, name: str, image: Any, step: int = 0) -> None:
        """Send an ``H x W x C`` image (uint8 array or tensor) to the backends that record
        images (TensorBoard, MLflow, W&B)."""
        self._each("add_image", name, image, step=step)

    def add_graph(self, model: Any, data_batch: Any = None) -> None:
        """Give the model to the backends that record it (W&B's ``watch``)."""
        self._each("add_graph", model, data_batch)

    def add_artifact(self, path: str) -> None:
        """Attach the file ``path`` (e.g. the final checkpoint) to the trackers' runs."""
        self._each("add_artifact", path)

    def _each(self, method: str, *args: Any, **kwargs: Any) -> None:
        for backend in self.backends:
            function = getattr(backend, method, None)
            if function is not None:
                function(*args, **kwargs)

    def close(self) -> None:
        """Close every backend."""
        for backend in self.backends:
            backend.close()


def _accepts(function: Any, keyword: str) -> bool:
    """Whether ``function`` takes the keyword argument ``keyword`` (by name or ``**kwargs``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or (p.name == keyword and p.kind is not p.POSITIONAL_ONLY) for p in parameters)
