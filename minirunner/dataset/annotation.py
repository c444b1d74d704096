"""Reading annotation and meta files without mmengine's fileio: JSON always, YAML when
PyYAML is installed. Pickle files are refused: unpickling can run code."""

from __future__ import annotations

import json
import os
from typing import Any

from minirunner.utils import ConfigError


def load_annotation_file(path: str) -> Any:
    """Parse ``path`` by its extension: ``.json``, or ``.yaml``/``.yml`` (needs PyYAML).

    Raises:
        FileNotFoundError: there is no such file.
        ConfigError: an unsupported or unsafe format (``.pkl``), or PyYAML is missing.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".json":
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    if extension in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as error:
            raise ConfigError(
                f"{path} is YAML, which needs PyYAML (pip install pyyaml), or convert it to JSON",
                key="ann_file",
            ) from error
        with open(path, encoding="utf-8") as file:
            return yaml.safe_load(file)
    if extension in (".pkl", ".pickle"):
        raise ConfigError(
            f"{path} is a pickle file; minirunner does not unpickle annotation files (that can "
            "run arbitrary code). Convert it once to JSON with the same metainfo/data_list "
            "layout",
            key="ann_file",
        )
    raise ConfigError(
        f"cannot read {path}: annotation files must be .json (or .yaml with PyYAML)",
        key="ann_file",
    )


def list_from_file(path: str) -> list[str]:
    """The lines of a text file, without their line endings (as a class-name file)."""
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\n\r") for line in file]
