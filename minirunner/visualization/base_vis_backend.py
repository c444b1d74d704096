"""`BaseVisBackend`: the methods a scalar backend provides, for users to subclass."""

from __future__ import annotations

import importlib
import os
from typing import Any

from minirunner.utils import ConfigError
from minirunner.utils.install_hint import extra_install_hint


class BaseVisBackend:
    """What the :class:`Visualizer` calls on a backend; every method does nothing here.

    Subclass it, override what your backend records, and register it in ``VISBACKENDS``::

        @VISBACKENDS.register_module()
        class PrintBackend(BaseVisBackend):
            def add_scalars(self, scalar_dict, step=0, file_path=None, **kwargs):
                print(step, scalar_dict)

    ``add_scalars`` receives the log processor's ``step`` (the epoch for validation metrics
    when logging by epoch) and, as the keyword ``global_iter``, the global iteration the
    scalars belong to; trackers plot over ``global_iter`` so that training and validation
    curves share one axis. Keep ``**kwargs`` in overrides: the runner passes ``global_iter``.

    Args:
        save_dir: the run's log folder ``<work_dir>/<timestamp>`` (the Visualizer passes it).
    """

    def __init__(self, save_dir: str) -> None:
        self._save_dir = save_dir

    @property
    def experiment(self) -> Any:
        """The tracker's own object (an MLflow client, a W&B run); the backend itself here."""
        return self

    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Record the run's config."""

    def add_graph(self, model: Any, data_batch: Any = None, **kwargs: Any) -> None:
        """Record the model (W&B watches it)."""

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Record an image (an ``H x W x C`` uint8 array or tensor) at ``step``."""

    def add_scalar(self, name: str, value: Any, step: int = 0, **kwargs: Any) -> None:
        """Record one scalar at ``step``."""
        self.add_scalars({name: value}, step=step, **kwargs)

    def add_scalars(self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any) -> None:
        """Record ``scalar_dict`` at ``step`` (``global_iter`` in ``kwargs`` when the runner logs)."""

    def add_artifact(self, path: str, **kwargs: Any) -> None:
        """Record a file (e.g. the final checkpoint) with the run, where the backend keeps files."""

    def close(self) -> None:
        """Write out what is buffered; a later call may open the backend again."""


def tracker_step(step: int, kwargs: dict[str, Any]) -> int:
    """The step a tracker plots at: the global iteration when the caller gave one."""
    global_iter = kwargs.get("global_iter")
    return int(step if global_iter is None else global_iter)


def work_dir_of(save_dir: str) -> str:
    """The work dir of a log folder ``<work_dir>/<timestamp>``: what stays the same when a
    run is resumed (each resume writes a new log folder)."""
    return os.path.dirname(os.path.abspath(save_dir))


def config_text(config: Any) -> str:
    """The config as Python text (``pretty_text``), or ``str`` of anything else."""
    return config.pretty_text if hasattr(config, "pretty_text") else str(config)


def plain_number(value: Any) -> Any:
    """A tensor or NumPy scalar as a Python number; anything else unchanged."""
    if hasattr(value, "item"):
        return value.item()
    return value


def import_optional(module: str, backend: str, extra: str) -> Any:
    """Import ``module`` for ``backend``; a missing package is a config error naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(
            f"{backend} needs the {extra} package, which cannot be imported ({error}). "
            f"Install it with: {extra_install_hint(extra)}, or remove {backend} from visualizer.vis_backends"
        ) from None
