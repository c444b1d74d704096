"""Scalar backends: where logged scalars go besides the log file."""

from __future__ import annotations

import json
import os
from typing import Any

from minirunner.registry import VISBACKENDS
from minirunner.utils import ConfigError
from minirunner.utils.install_hint import extra_install_hint


@VISBACKENDS.register_module()
class LocalVisBackend:
    """Appends scalars to ``<save_dir>/vis_data/scalars.json``, one JSON object per line.

    Each line is ``{"step": N, "<name>": value, ...}``, the format ``tools/analyze_logs.py``
    reads. :meth:`add_config` writes the config next to it as ``config.py``.
    """

    def __init__(self, save_dir: str, scalar_save_file: str = "scalars.json") -> None:
        self.folder = os.path.join(save_dir, "vis_data")
        self.path = os.path.join(self.folder, scalar_save_file)
        self._file: Any = None  # opened at the first write, kept open until close()

    def add_scalars(self, scalars: dict[str, Any], step: int = 0) -> None:
        """Write one line with ``step`` and the scalars (flushed at once, so it survives a crash)."""
        record = {"step": int(step)}
        record.update({key: _plain(value) for key, value in scalars.items()})
        if self._file is None:
            # Kept open: opening the file for every line cost more than the line itself.
            os.makedirs(self.folder, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def add_scalar(self, name: str, value: Any, step: int = 0) -> None:
        """Write one line with ``step`` and one scalar."""
        self.add_scalars({name: value}, step=step)

    def add_config(self, config: Any) -> None:
        """Write the config's text (``pretty_text``) to ``vis_data/config.py``."""
        os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, "config.py"), "w", encoding="utf-8") as handle:
            handle.write(_config_text(config))

    def close(self) -> None:
        """Close the file; a later write opens it again (appending)."""
        if self._file is not None:
            self._file.close()
            self._file = None


@VISBACKENDS.register_module()
class TensorboardVisBackend:
    """Writes scalars to TensorBoard event files in ``<save_dir>/vis_data``.

    Uses ``torch.utils.tensorboard.SummaryWriter``, which needs the ``tensorboard`` package
    (``pip install -e '.[tensorboard]'`` in the minirunner checkout). It is imported when the backend is built,
    never by ``import minirunner``; without it, building the backend is a config error.

    Example:
        >>> visualizer = dict(type='Visualizer',
        ...                   vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])

    Args:
        save_dir: the run's log folder (the Visualizer passes it).
        init_kwargs: extra keyword arguments for ``SummaryWriter`` (e.g. ``flush_secs``).
    """

    def __init__(self, save_dir: str, init_kwargs: dict | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise ConfigError(
                f"TensorboardVisBackend needs the tensorboard package, which cannot be imported ({error}). "
                f"Install it with: {extra_install_hint('tensorboard')} (or pip install tensorboard), "
                "or remove TensorboardVisBackend from visualizer.vis_backends"
            ) from None
        self._writer_class = SummaryWriter
        self.folder = os.path.join(save_dir, "vis_data")
        self.init_kwargs = dict(init_kwargs or {})
        self._writer: Any = None

    @property
    def writer(self) -> Any:
        """The ``SummaryWriter``, opened on first use (again after :meth:`close`)."""
        if self._writer is None:
            self._writer = self._writer_class(self.folder, **self.init_kwargs)
        return self._writer

    def add_scalars(self, scalars: dict[str, Any], step: int = 0) -> None:
        """Add each scalar under its name at ``step``."""
        writer = self.writer
        for name, value in scalars.items():
            writer.add_scalar(name, _plain(value), int(step))

    def add_scalar(self, name: str, value: Any, step: int = 0) -> None:
        """Add one scalar at ``step``."""
        self.writer.add_scalar(name, _plain(value), int(step))

    def add_config(self, config: Any) -> None:
        """Show the config's text in TensorBoard's Text tab (under ``config``)."""
        # Markdown would eat the indentation: a code block keeps it.
        self.writer.add_text("config", "```python\n" + _config_text(config) + "\n```")

    def close(self) -> None:
        """Flush and close the event file; a later write opens a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _config_text(config: Any) -> str:
    return config.pretty_text if hasattr(config, "pretty_text") else str(config)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value
