"""`Config`: a loaded config file, with overrides and dumping."""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
import warnings
from typing import Any, Iterator

from minirunner.utils import ConfigError

from .config_dict import ConfigDict
from .loader import DELETE_KEY, load_file, merge, strip_delete_keys
from .pretty import format_python, to_plain_data

_OWN_ATTRIBUTES = ("_cfg_dict", "_filename", "_text")


class Config:
    """A config: a tree of dicts and lists read from a ``.py``, ``.json`` or ``.yaml`` file.

    Keys are reachable as attributes and as items (``cfg.optim_wrapper.optimizer.lr`` or
    ``cfg['optim_wrapper']``). Reading a key that does not exist raises an error listing
    the keys that do.

    Args:
        cfg_dict: the values; nested dicts become :class:`ConfigDict`.
        filename: the file the config came from, if any.
        text: the source text of that file and its bases.

    Example:
        >>> cfg = Config(dict(model=dict(type='MLP', hidden=64)))
        >>> cfg.merge_from_dict({'model.hidden': 128})
        >>> cfg.model.hidden
        128
    """

    def __init__(self, cfg_dict: dict | None = None, filename: str | None = None, text: str | None = None) -> None:
        if cfg_dict is None:
            cfg_dict = {}
        if not isinstance(cfg_dict, dict):
            raise TypeError(f"cfg_dict must be a dict, got {type(cfg_dict).__name__}")
        object.__setattr__(self, "_cfg_dict", ConfigDict(copy.deepcopy(dict(cfg_dict))))
        object.__setattr__(self, "_filename", os.path.abspath(filename) if filename else None)
        object.__setattr__(self, "_text", text or "")

    # ------------------------------------------------------------------ loading
    @staticmethod
    def fromfile(filename: str | os.PathLike, import_custom_modules: bool = True) -> "Config":
        """Load a config file with its ``_base_`` files.

        When the config has ``custom_imports=dict(imports=[...], allow_failed_imports=False)``
        and ``import_custom_modules`` is True, those modules are imported, so the classes
        they register can be named in the config.
        """
        filename = os.fspath(filename)
        cfg_dict, text = load_file(filename)
        if import_custom_modules and "custom_imports" in cfg_dict:
            import_custom_modules_from(cfg_dict["custom_imports"], filename)
        return Config(cfg_dict, filename=filename, text=text)

    # ------------------------------------------------------------------ views
    @property
    def filename(self) -> str | None:
        """The absolute path of the file the config was read from."""
        return self._filename

    @property
    def text(self) -> str:
        """The source text of the config file and its bases, each under a ``# path`` line."""
        return self._text

    @property
    def pretty_text(self) -> str:
        """The config as Python source (what :meth:`dump` writes to a ``.py`` file)."""
        return format_python(self._cfg_dict)

    def to_dict(self) -> dict:
        """A deep copy of the config made of plain dicts, lists and tuples."""
        return self._cfg_dict.to_dict()

    # ------------------------------------------------------------------ changing
    def merge_from_dict(self, options: dict, allow_list_keys: bool = True) -> None:
        """Apply overrides written as dotted keys, e.g. from ``--cfg-options``.

        ``{'optim_wrapper.optimizer.lr': 0.01}`` sets one value; a list element is reached
        by its index (``'pipeline.0.type'``). A dict value merges into an existing dict.
        """
        for dotted, value in options.items():
            self._set_dotted(str(dotted), value, allow_list_keys)

    def _set_dotted(self, dotted: str, value: Any, allow_list_keys: bool) -> None:
        parts = dotted.split(".")
        node: Any = self._cfg_dict
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth])
            if isinstance(node, list):
                if not allow_list_keys or not part.isdigit():
                    raise ConfigError(
                        f"'{where}' is a list; address its items by index ('{where}.0...')",
                        key=dotted,
                    )
                index = int(part)
                if index >= len(node):
                    raise ConfigError(
                        f"index {index} is out of range: '{where}' has {len(node)} item(s)", key=dotted
                    )
                if last:
                    node[index] = _merged_value(node[index], value)
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = _merged_value(node.get(part), value)
                else:
                    if part not in node:
                        node[part] = ConfigDict()
                    node = node[part]
            else:
                raise ConfigError(
                    f"'{where}' is a {type(node).__name__} ({node!r}), so it has no key '{part}'; "
                    "override the whole value instead",
                    key=dotted,
                )

    # ------------------------------------------------------------------ writing
    def dump(self, file: str | os.PathLike | None = None) -> str | None:
        """Write the config to ``file`` (``.py``, ``.json``, ``.yaml``); return the text if no file.

        A ``.py`` dump loads back to an equal config. JSON and YAML have no tuples, so tuples
        come back as lists.
        """
        if file is None:
            return self.pretty_text
        path = os.fspath(file)
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".py":
            text = self.pretty_text
        elif suffix == ".json":
            text = json.dumps(to_plain_data(self._cfg_dict), indent=4) + "\n"
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    f"writing {path} needs PyYAML; install it with pip install 'minirunner[yaml]'"
                ) from None
            text = yaml.safe_dump(to_plain_data(self._cfg_dict), sort_keys=False)
        else:
            raise ConfigError(f"cannot dump a config to '{path}': use a .py, .json or .yaml file name")
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return None

    # ------------------------------------------------------------------ mapping protocol
    def __getattr__(self, name: str) -> Any:
        if name in _OWN_ATTRIBUTES:  # not set yet (unpickling): avoid recursing
            raise AttributeError(name)
        return getattr(self._cfg_dict, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            self._cfg_dict[name] = _as_config_value(value)

    def __delattr__(self, name: str) -> None:
        del self._cfg_dict[name]

    def __getitem__(self, name: str) -> Any:
        return self._cfg_dict[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._cfg_dict[name] = _as_config_value(value)

    def __delitem__(self, name: str) -> None:
        del self._cfg_dict[name]

    def __contains__(self, name: object) -> bool:
        return name in self._cfg_dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._cfg_dict)

    def __len__(self) -> int:
        return len(self._cfg_dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self.to_dict() == other.to_dict()
        if isinstance(other, dict):
            return self.to_dict() == ConfigDict(other).to_dict()
        return NotImplemented

    def __repr__(self) -> str:
        return f"Config (path: {self._filename}): {self.to_dict()!r}"

    def __copy__(self) -> "Config":
        new = Config.__new__(Config)
        for name in _OWN_ATTRIBUTES:
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, "_cfg_dict", copy.copy(self._cfg_dict))
        return new

    def __deepcopy__(self, memo: dict) -> "Config":
        new = Config.__new__(Config)
        memo[id(self)] = new
        for name in _OWN_ATTRIBUTES:
            object.__setattr__(new, name, copy.deepcopy(getattr(self, name), memo))
        return new

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in _OWN_ATTRIBUTES}

    def __setstate__(self, state: dict) -> None:
        for name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, state[name])


def _as_config_value(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, ConfigDict):
        return ConfigDict(value)
    # Dicts inside lists get attribute access too, as they do when a file is loaded.
    if type(value) in (list, tuple):
        return type(value)(_as_config_value(item) for item in value)
    return value


def _merged_value(current: Any, value: Any) -> Any:
    if isinstance(value, dict) and isinstance(current, dict) and not value.get(DELETE_KEY, False):
        return merge(current, value)
    # A copy, so the caller's lists and dicts do not become part of the config.
    return _as_config_value(strip_delete_keys(value))


def import_custom_modules_from(custom_imports: Any, filename: str = "the config") -> None:
    """Import the modules named in ``custom_imports=dict(imports=[...], allow_failed_imports=False)``."""
    if not isinstance(custom_imports, dict) or "imports" not in custom_imports:
        raise ConfigError(
            f"{filename}: custom_imports must be dict(imports=['module', ...], allow_failed_imports=False), "
            f"got {custom_imports!r}",
            key="custom_imports",
        )
    unknown = set(custom_imports) - {"imports", "allow_failed_imports"}
    if unknown:
        raise ConfigError(
            f"{filename}: unknown key(s) {sorted(unknown)} in custom_imports; it takes 'imports' and "
            "'allow_failed_imports'",
            key="custom_imports",
        )
    modules = custom_imports["imports"]
    modules = [modules] if isinstance(modules, str) else modules
    allow_failed = custom_imports.get("allow_failed_imports", False)
    # `python tools/train.py` puts tools/ first on sys.path, not the directory the user is in.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            message = (
                f"{filename}: cannot import '{module}' listed in custom_imports.imports ({error}); "
                "check the module name and that it is importable from the current directory or "
                "installed"
            )
            if not allow_failed:
                raise ConfigError(message, key="custom_imports.imports") from error
            warnings.warn(message + "; skipped because allow_failed_imports=True", stacklevel=2)
