"""Scalar backends: where logged scalars go besides the log file."""

from __future__ import annotations

import json
import os
from typing import Any

from minirunner.registry import VISBACKENDS


@VISBACKENDS.register_module()
class LocalVisBackend:
    """Appends scalars to ``<save_dir>/vis_data/scalars.json``, one JSON object per line.

    Each line is ``{"step": N, "<name>": value, ...}``, the format ``tools/analyze_logs.py``
    reads.
    """

    def __init__(self, save_dir: str, scalar_save_file: str = "scalars.json") -> None:
        self.folder = os.path.join(save_dir, "vis_data")
        self.path = os.path.join(self.folder, scalar_save_file)

    def add_scalars(self, scalars: dict[str, Any], step: int = 0) -> None:
        """Write one line with ``step`` and the scalars."""
        os.makedirs(self.folder, exist_ok=True)
        record = {"step": int(step)}
        record.update({key: _plain(value) for key, value in scalars.items()})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing to release: each write opens and closes the file."""


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value
