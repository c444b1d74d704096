"""`Config`: a loaded config file, with overrides and dumping."""

from __future__ import annotations

import copy
import difflib
import importlib
import json
import os
import sys
import tempfile
import warnings
from argparse import ArgumentParser
from typing import Any, Iterator

from minirunner.utils import ConfigError
from minirunner.utils.install_hint import extra_install_hint

from .auto_argparser import add_args
from .config_dict import DELETE_KEY, ConfigDict, rebuild_mapping
from .errors import ConfigImportError, ConfigKeyError, ConfigOSError
from .loader import SUPPORTED_SUFFIXES, load_file, merge, strip_delete_keys
from .pretty import format_python, import_path, to_plain_data

_OWN_ATTRIBUTES = ("_cfg_dict", "_filename", "_text", "_env_variables", "_format_python_code")
# Names of Config's own properties: a key with one of these names could not be read as an
# attribute, so MMEngine refuses them, and so do we.
RESERVED_KEYS = ("filename", "text", "pretty_text", "env_variables")


class Config:
    """A config: a tree of dicts and lists read from a ``.py``, ``.json`` or ``.yaml`` file.

    Keys are reachable as attributes and as items (``cfg.optim_wrapper.optimizer.lr`` or
    ``cfg['optim_wrapper']``). Reading a key that does not exist raises an error listing
    the keys that do.

    Args:
        cfg_dict: the values; nested dicts become :class:`ConfigDict`.
        cfg_text: the source text the values came from; read from ``filename`` when not
            given.
        filename: the file the config came from, if any.
        env_variables: the environment variables that ``{{$NAME:default}}`` placeholders
            used (``Config.fromfile`` fills it).
        format_python_code: accepted for MMEngine compatibility; :attr:`pretty_text` is
            always formatted by our own formatter.
        text: another name for ``cfg_text``.

    Example:
        >>> cfg = Config(dict(model=dict(type='MLP', hidden=64)))
        >>> cfg.merge_from_dict({'model.hidden': 128})
        >>> cfg.model.hidden
        128
    """

    def __init__(
        self,
        cfg_dict: dict | None = None,
        cfg_text: str | None = None,
        filename: str | os.PathLike | None = None,
        env_variables: dict | None = None,
        format_python_code: bool = True,
        *,
        text: str | None = None,
    ) -> None:
        if cfg_dict is None:
            cfg_dict = {}
        if not isinstance(cfg_dict, dict):
            raise TypeError(f"cfg_dict must be a dict, got {type(cfg_dict).__name__}")
        for key in cfg_dict:
            if key in RESERVED_KEYS:
                raise ConfigKeyError(
                    f"'{key}' is the name of a Config property ({', '.join(RESERVED_KEYS)} are "
                    "reserved), so it cannot be a top-level key; rename it",
                    key=str(key),
                )
        filename = os.fspath(filename) if filename is not None else None
        source = cfg_text or text
        if not source and filename and os.path.isfile(filename):
            # Only for display: a file in another encoding must not stop the config.
            with open(filename, encoding="utf-8-sig", errors="replace") as handle:
                source = handle.read()
        object.__setattr__(self, "_cfg_dict", ConfigDict(copy.deepcopy(dict(cfg_dict))))
        object.__setattr__(self, "_filename", os.path.abspath(filename) if filename else None)
        object.__setattr__(self, "_text", source or "")
        object.__setattr__(self, "_env_variables", dict(env_variables or {}))
        object.__setattr__(self, "_format_python_code", format_python_code)

    # ------------------------------------------------------------------ loading
    @staticmethod
    def fromfile(
        filename: str | os.PathLike,
        use_predefined_variables: bool = True,
        import_custom_modules: bool = True,
        use_environment_variables: bool = True,
        lazy_import: bool | None = None,
        format_python_code: bool = True,
    ) -> "Config":
        """Load a config file with its bases.

        Bases come from ``_base_ = [...]`` or, in a pure-Python config, from imports inside
        ``with read_base():`` (see :func:`read_base`). Before parsing, ``{{fileDirname}}``,
        ``{{fileBasename}}``, ``{{fileBasenameNoExtension}}`` and ``{{fileExtname}}`` are
        replaced (unless ``use_predefined_variables`` is False), and so is
        ``{{$NAME:default}}`` with the environment variable ``NAME`` (unless
        ``use_environment_variables`` is False).

        When the config has ``custom_imports=dict(imports=[...], allow_failed_imports=False)``
        and ``import_custom_modules`` is True, those modules are imported, so the classes
        they register can be named in the config.

        ``lazy_import`` and ``format_python_code`` are accepted for MMEngine compatibility:
        the style of a file is detected from its content, and imports in a config always
        run when it is loaded.
        """
        filename = os.fspath(filename)
        cfg_dict, text, env_variables = load_file(filename, use_predefined_variables, use_environment_variables)
        if import_custom_modules and "custom_imports" in cfg_dict:
            import_custom_modules_from(cfg_dict["custom_imports"], filename)
        return Config(
            cfg_dict,
            cfg_text=text,
            filename=filename,
            env_variables=env_variables,
            format_python_code=format_python_code,
        )

    @staticmethod
    def fromstring(cfg_str: str, file_format: str) -> "Config":
        """Build a config from the text of a config file in ``file_format``.

        ``file_format`` is the suffix the text would have as a file: ``'.py'``, ``'.json'``,
        ``'.yaml'`` or ``'.yml'``. The text is written to a temporary file that is read
        like any config file (so ``_base_`` paths are relative to the temporary folder and
        only absolute ones work) and then deleted.

        Example:
            >>> Config.fromstring("lr = 0.1\\nmodel = dict(type='MLP')", '.py').model.type
            'MLP'
        """
        if file_format not in SUPPORTED_SUFFIXES:
            raise ConfigOSError(
                f"file_format must be one of {', '.join(SUPPORTED_SUFFIXES)} (with the dot), "
                f"got {file_format!r}"
            )
        if file_format != ".py" and "dict(" in cfg_str:
            warnings.warn(
                f"the config text contains 'dict(' but is read as {file_format}; "
                "pass file_format='.py' if it is Python",
                stacklevel=2,
            )
        # delete=False and a separate read: Windows cannot open a temporary file twice.
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=file_format, delete=False) as handle:
            handle.write(cfg_str)
        try:
            return Config.fromfile(handle.name)
        finally:
            os.remove(handle.name)

    @staticmethod
    def auto_argparser(description: str | None = None) -> tuple[ArgumentParser, "Config"]:
        """A parser with a ``config`` argument and an option for every key of that config.

        The config file is the first positional argument on the command line
        (``sys.argv``); it is loaded, and every setting in it becomes an option
        (``--lr``, ``--model.depth``; see :func:`add_args` for the types). Returns the
        parser and the loaded config.
        """
        first = ArgumentParser(description=description)
        first.add_argument("config", help="config file path")
        cfg = Config.fromfile(first.parse_known_args()[0].config)
        parser = ArgumentParser(description=description)
        parser.add_argument("config", help="config file path")
        add_args(parser, cfg._cfg_dict)
        return parser, cfg

    @staticmethod
    def diff(cfg1: "str | os.PathLike | Config", cfg2: "str | os.PathLike | Config") -> str:
        """A unified diff of the two configs' :attr:`pretty_text` (a path is loaded first).

        Lines only in ``cfg1`` start with ``-``, lines only in ``cfg2`` with ``+``; equal
        configs give an empty string.
        """
        first = cfg1 if isinstance(cfg1, Config) else Config.fromfile(cfg1)
        second = cfg2 if isinstance(cfg2, Config) else Config.fromfile(cfg2)
        lines = difflib.unified_diff(first.pretty_text.split("\n"), second.pretty_text.split("\n"), lineterm="")
        return "".join(line + "\n" for line in lines)

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
    def env_variables(self) -> dict:
        """The environment variables that ``{{$NAME:default}}`` placeholders took values from."""
        return self._env_variables

    @property
    def pretty_text(self) -> str:
        """The config as Python source (what :meth:`dump` writes to a ``.py`` file)."""
        return format_python(self._cfg_dict)

    def to_dict(self, keep_imported: bool = False) -> dict:
        """A deep copy of the config made of plain dicts, lists and tuples.

        Classes and functions (a ``type`` imported in a pure-Python config) stay objects.
        ``keep_imported`` is accepted for MMEngine compatibility: imported classes and
        modules are never settings here.
        """
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

        Without ``file`` the text is in the format of the file the config was read from
        (Python when it was not read from a file). A ``.py`` dump loads back to an equal
        config. JSON and YAML have no tuples, so tuples come back as lists. A class or
        function (a ``type`` imported in a pure-Python config) is written as its import
        path, which the registry resolves back to it.
        """
        if file is None:
            suffix = os.path.splitext(self._filename or "")[1].lower()
            return self._text_as(suffix if suffix in (".json", ".yaml", ".yml") else ".py", "the dump")
        path = os.fspath(file)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise ConfigError(f"cannot dump a config to '{path}': use a .py, .json or .yaml file name")
        text = self._text_as(suffix, path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return None

    def _text_as(self, suffix: str, target: str) -> str:
        if suffix == ".py":
            return self.pretty_text
        if suffix == ".json":
            return json.dumps(to_plain_data(self._cfg_dict), indent=4) + "\n"
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"writing {target} needs PyYAML; install it with {extra_install_hint('yaml')}"
            ) from None
        return yaml.safe_dump(to_plain_data(self._cfg_dict), sort_keys=False)

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
        # A class compares equal to its import path, which is what a dump writes for it.
        if isinstance(other, Config):
            return _comparable(self.to_dict()) == _comparable(other.to_dict())
        if isinstance(other, dict):
            return _comparable(self.to_dict()) == _comparable(ConfigDict(other).to_dict())
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
        defaults = {"_env_variables": {}, "_format_python_code": True}  # pickles of older versions
        for name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, state.get(name, defaults.get(name)))


def _as_config_value(value: Any) -> Any:
    # Dicts (also inside lists) get attribute access, as they do when a file is loaded;
    # the user's own dict subclasses keep their class.
    return ConfigDict._hook(value)


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_comparable(item) for item in value) if type(value) in (list, tuple) else value
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return import_path(value)
    return value


def _merged_value(current: Any, value: Any) -> Any:
    if isinstance(value, dict) and isinstance(current, dict) and not value.get(DELETE_KEY, False):
        return rebuild_mapping(current, merge(current, value), ConfigDict)
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
                raise ConfigImportError(message, key="custom_imports.imports") from error
            warnings.warn(message + "; skipped because allow_failed_imports=True", stacklevel=2)
