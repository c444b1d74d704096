"""Text substitutions done on a config file before it is parsed.

Two kinds, in this order, in every format (``.py``, ``.json``, ``.yaml``):

- predefined variables: ``{{fileDirname}}``, ``{{fileBasename}}``,
  ``{{fileBasenameNoExtension}}`` and ``{{fileExtname}}`` become the folder, the file name,
  the file name without its extension and the extension (with the dot) of the config file;
- environment variables: ``{{$NAME:default}}`` becomes the value of ``NAME``, or
  ``default`` when it is not set. The replacement is plain text, so
  ``'{{$DATA_ROOT:data}}/images'`` stays a string and ``num_classes={{$NUM_CLASSES:10}}``
  becomes a number; quotes directly inside the braces (``{{'$NUM_CLASSES:10'}}``) are
  dropped with them.

``{{_base_.key}}`` placeholders are handled later, by the loader, once the bases are read.
"""

from __future__ import annotations

import os
import re

from .errors import ConfigKeyError

PREDEFINED_VARIABLES = ("fileDirname", "fileBasename", "fileBasenameNoExtension", "fileExtname")
_PREDEFINED = re.compile(r"\{\{\s*(" + "|".join(PREDEFINED_VARIABLES) + r")\s*\}\}")
_ENVIRONMENT = re.compile(r"""\{\{['"]?\s*\$(\w+)\s*:\s*(\S*?)\s*['"]?\}\}""")


def substitute_predefined_variables(path: str, source: str) -> str:
    """Replace ``{{fileDirname}}`` and the other predefined variables of ``path`` in ``source``.

    Paths are written with forward slashes, so a Windows path does not turn into escape
    sequences inside a Python string.
    """
    if "{{" not in source:
        return source
    basename = os.path.basename(path)
    values = {
        "fileDirname": os.path.dirname(path),
        "fileBasename": basename,
        "fileBasenameNoExtension": os.path.splitext(basename)[0],
        "fileExtname": os.path.splitext(path)[1],
    }
    return _PREDEFINED.sub(lambda match: values[match.group(1)].replace("\\", "/"), source)


def substitute_environment_variables(path: str, source: str, used: dict[str, str]) -> str:
    """Replace ``{{$NAME:default}}`` in ``source``; record the variables that were set in ``used``.

    Raises:
        ConfigKeyError: the variable is not set and the placeholder has no default.
    """
    if "{{" not in source:
        return source

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            used[name] = os.environ[name]
            value = os.environ[name]
        else:
            value = default
        if not value:
            line = source.count("\n", 0, match.start()) + 1
            raise ConfigKeyError(
                f"{path}, line {line}: {match.group(0)} needs the environment variable "
                f"{name}, which is not set (or empty) and has no default; set it "
                f"({name}=... python ...) or write a default as {{{{${name}:value}}}}"
            )
        return value

    return _ENVIRONMENT.sub(replace, source)
