"""Scalar backends: where logged scalars go besides the log file."""

from __future__ import annotations

import json
import os
from typing import Any

from minirunner.registry import VISBACKENDS

from .base_vis_backend import BaseVisBackend, config_text, import_optional, plain_number, tracker_step


@VISBACKENDS.register_module()
class LocalVisBackend(BaseVisBackend):
    """Appends scalars to ``<save_dir>/vis_data/scalars.json``, one JSON object per line.

    Each line is ``{"step": N, "iter": I, "<name>": value, ...}``, the format
    ``tools/analyze_logs.py`` reads: ``step`` is the log processor's (the epoch for validation
    metrics when logging by epoch), ``iter`` the global iteration the trackers plot at (present
    when the runner logs). :meth:`add_config` writes the config next to it as ``config.py``.
    """

    def __init__(self, save_dir: str, scalar_save_file: str = "scalars.json") -> None:
        super().__init__(save_dir)
        self.folder = os.path.join(save_dir, "vis_data")
        self.path = os.path.join(self.folder, scalar_save_file)
        self._file: Any = None  # opened at the first write, kept open until close()

    def add_scalars(self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any) -> None:
        """Write one line with ``step``, ``iter`` and the scalars (flushed at once, so it
        survives a crash)."""
        record = {"step": int(step)}
        if kwargs.get("global_iter") is not None:
            record["iter"] = int(kwargs["global_iter"])
        record.update({key: plain_number(value) for key, value in scalar_dict.items()})
        if self._file is None:
            # Kept open: opening the file for every line cost more than the line itself.
            os.makedirs(self.folder, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Write the config's text (``pretty_text``) to ``vis_data/config.py``."""
        os.makedirs(self.folder, exist_ok=True)
        with open(os.path.join(self.folder, "config.py"), "w", encoding="utf-8") as handle:
            handle.write(config_text(config))

    def close(self) -> None:
        """Close the file; a later write opens it again (appending)."""
        if self._file is not None:
            self._file.close()
            self._file = None


@VISBACKENDS.register_module()
class TensorboardVisBackend(BaseVisBackend):
    """Writes scalars (at the global iteration) and images to TensorBoard event files in
    ``<save_dir>/vis_data``.

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
        super().__init__(save_dir)
        tensorboard = import_optional("torch.utils.tensorboard", "TensorboardVisBackend", "tensorboard")
        self._writer_class = tensorboard.SummaryWriter
        self.folder = os.path.join(save_dir, "vis_data")
        self.init_kwargs = dict(init_kwargs or {})
        self._writer: Any = None

    @property
    def writer(self) -> Any:
        """The ``SummaryWriter``, opened on first use (again after :meth:`close`)."""
        if self._writer is None:
            self._writer = self._writer_class(self.folder, **self.init_kwargs)
        return self._writer

    @property
    def experiment(self) -> Any:
        """The ``SummaryWriter``."""
        return self.writer

    def add_scalars(self, scalar_dict: dict[str, Any], step: int = 0, file_path: str | None = None, **kwargs: Any) -> None:
        """Add each scalar under its name at the global iteration (``step`` without one)."""
        writer = self.writer
        step = tracker_step(step, kwargs)
        for name, value in scalar_dict.items():
            writer.add_scalar(name, plain_number(value), step)

    def add_image(self, name: str, image: Any, step: int = 0, **kwargs: Any) -> None:
        """Add an ``H x W x C`` image at ``step``."""
        self.writer.add_image(name, image, step, dataformats="HWC")

    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Show the config's text in TensorBoard's Text tab (under ``config``)."""
        # Markdown would eat the indentation: a code block keeps it.
        self.writer.add_text("config", "```python\n" + config_text(config) + "\n```")

    def close(self) -> None:
        """Flush and close the event file; a later write opens a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
