"""Reading config files: the three formats, ``_base_`` inheritance and ``{{_base_.x}}``.

A config file is read in three steps: its ``_base_`` files are read first (recursively, each
path relative to the file that names it), merged into one dict; then the file itself is
evaluated with ``_base_`` bound to that dict, so it can refer to base values; finally its own
keys are merged over the base (dicts recursively, everything else replaced).
"""

from __future__ import annotations

import ast
import copy
import io
import json
import os
import re
import tokenize
from dataclasses import dataclass, field
from typing import Any

from minirunner.utils import ConfigError
from minirunner.utils.install_hint import extra_install_hint

from .config_dict import DELETE_KEY, ConfigDict, rebuild_mapping
from .execution import execute, public_names, settings
from .python_style import Loaded, evaluate_python_style, is_python_style
from .substitution import substitute_environment_variables, substitute_predefined_variables

BASE_KEY = "_base_"
SUPPORTED_SUFFIXES = (".py", ".json", ".yaml", ".yml")
_PLACEHOLDER = re.compile(r"\{\{\s*_base_\.([\w.]+)\s*\}\}")


@dataclass
class LoadOptions:
    """How files are read: which substitutions apply, and what they used."""

    predefined_variables: bool = True
    environment_variables: bool = True
    used_environment: dict[str, str] = field(default_factory=dict)


def load_file(
    path: str, use_predefined_variables: bool = True, use_environment_variables: bool = True
) -> tuple[ConfigDict, str, dict[str, str]]:
    """Read ``path`` with all its bases.

    Returns the merged config, the text of every file, and the environment variables that
    ``{{$NAME:default}}`` placeholders took their values from.
    """
    options = LoadOptions(use_predefined_variables, use_environment_variables)
    loaded = _load(os.path.abspath(path), [], options)
    return loaded.values, loaded.text, options.used_environment


def _load(path: str, stack: list[str], options: LoadOptions) -> Loaded:
    if path in stack:
        chain = " -> ".join(os.path.basename(p) for p in stack + [path])
        raise ConfigError(f"circular _base_ inheritance: {chain}; remove one of these _base_ entries")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ConfigError(
            f"{path}: config files must end in {', '.join(SUPPORTED_SUFFIXES)}; got '{suffix or 'no suffix'}'"
        )
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}; check the path (relative paths start at {os.getcwd()})")
    original = _read_text(path, named_by=stack[-1] if stack else None)
    source = original
    if options.predefined_variables:
        source = substitute_predefined_variables(path, source)
    if options.environment_variables:
        source = substitute_environment_variables(path, source, options.used_environment)
    own_text = f"# {path}\n{original}"

    if suffix == ".py":
        tree = _parse_python(path, source)
        if is_python_style(tree):
            loaded = evaluate_python_style(path, tree, lambda base: _load(base, stack + [path], options))
            text = "\n".join(t for t in (loaded.text, own_text) if t)
            return Loaded(loaded.values, text, loaded.exports)

    base_paths = _base_paths(path, source, suffix)
    base_cfg = ConfigDict()
    base_texts = []
    key_origin: dict[str, str] = {}
    for base_path in base_paths:
        cfg = _load(base_path, stack + [path], options)
        for key in cfg.values:
            if key in key_origin:
                raise ConfigError(
                    f"{path}: the key '{key}' is defined in two _base_ files, {key_origin[key]} and "
                    f"{base_path}; keep it in one base, or set it in {os.path.basename(path)} itself"
                )
            key_origin[key] = base_path
        base_cfg.update(cfg.values)
        base_texts.append(cfg.text)

    tools: dict[str, Any] = {}
    if suffix == ".py":
        names = _evaluate_python(path, source, base_cfg)
        own = settings(names)
        tools = {name: value for name, value in names.items() if name not in own}
    else:
        data = _parse_data(path, source, suffix)
        data.pop(BASE_KEY, None)
        own = _substitute_data(data, base_cfg, path)
    merged = merge(base_cfg, own)
    text = "\n".join(base_texts + [own_text])
    # A pure-Python config that star-imports this file gets its imports too (SGD, nn).
    return Loaded(merged, text, {**tools, **merged})


def _read_text(path: str, named_by: str | None = None) -> str:
    """The text of the config file ``path``, which must be UTF-8 (a byte-order mark is allowed).

    ``named_by`` is the file whose ``_base_`` names ``path``, if any: the error then says
    which chain of files led to it.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the config file ({error.strerror or error}); check that it is "
            "a readable file"
        ) from None
    try:
        # Editors on Windows may start a UTF-8 file with a byte-order mark; Python and
        # JSON both reject one in a str, so drop it here.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(_not_utf8_message(path, data, error, named_by)) from None


def _not_utf8_message(path: str, data: bytes, error: UnicodeDecodeError, named_by: str | None) -> str:
    line_start = data.rfind(b"\n", 0, error.start) + 1
    line = data.count(b"\n", 0, error.start) + 1
    # The column counts characters, as an editor shows them, not bytes.
    column = len(data[line_start : error.start].decode("utf-8", errors="replace")) + 1
    base_note = f" (a _base_ file of {named_by})" if named_by else ""
    return (
        f"{path}, line {line}, column {column}{base_note}: byte 0x{data[error.start]:02x} "
        f"(offset {error.start}) is not valid UTF-8; the file seems to be saved in another "
        "encoding, such as Latin-1 or cp1252. Config files are read as UTF-8: save it as UTF-8 "
        "in your editor, or convert it with iconv -f latin1 -t utf-8"
    )


# ---------------------------------------------------------------------------- _base_ paths
def _base_paths(path: str, source: str, suffix: str) -> list[str]:
    if suffix == ".py":
        value = _python_base_value(path, source)
    else:
        value = _parse_data(path, source, suffix).get(BASE_KEY)
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths, got {value!r}", key=BASE_KEY)
    resolved = []
    folder = os.path.dirname(path)
    for name in names:
        base_path = os.path.normpath(os.path.join(folder, os.path.expanduser(name)))
        if not os.path.isfile(base_path):
            raise ConfigError(
                f"{path} names the base file '{name}', which does not exist (looked for {base_path}); "
                "_base_ paths are relative to the file that names them",
                key=BASE_KEY,
            )
        resolved.append(base_path)
    return resolved


def _python_base_value(path: str, source: str) -> Any:
    tree = _parse_python(path, source)
    for node in tree.body:
        if _assigns_base(node):
            try:
                return ast.literal_eval(node.value)
            except ValueError:
                raise ConfigError(
                    f"{path}, line {node.lineno}: _base_ must be a literal path or list of paths",
                    key=BASE_KEY,
                ) from None
    return None


def _assigns_base(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == BASE_KEY
    )


def _parse_python(path: str, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        raise ConfigError(
            f"{path}, line {error.lineno}: syntax error: {error.msg}\n    {(error.text or '').rstrip()}"
        ) from None


# ---------------------------------------------------------------------------- .py configs
def _evaluate_python(path: str, source: str, base_cfg: ConfigDict) -> dict[str, Any]:
    """Run an old-style ``.py`` config; return every name it defined or imported."""
    source = _rewrite_placeholders(path, source, base_cfg)
    tree = _parse_python(path, source)
    tree.body = [node for node in tree.body if not _assigns_base(node)]
    namespace: dict[str, Any] = {
        "__file__": path,
        "__name__": "__minirunner_config__",
        BASE_KEY: copy.deepcopy(base_cfg),
    }
    execute(path, tree, namespace)
    names = public_names(namespace)
    names.pop(BASE_KEY, None)
    return names


def _rewrite_placeholders(path: str, source: str, base_cfg: ConfigDict) -> str:
    """Turn ``{{_base_.a.b}}`` in Python source into code that reads the base value.

    ``'{{_base_.a}}'`` (a string that is only the placeholder) and a bare ``{{_base_.a}}``
    become the expression ``_base_.a``, so the value keeps its type; a placeholder inside a
    longer string is replaced by the value's text.
    """
    if "{{" not in source:
        return source
    string_spans = _string_spans(path, source)
    pieces = []
    last = 0
    for match in _PLACEHOLDER.finditer(source):
        start, end = match.span()
        if start < last:
            continue
        span = next((s for s in string_spans if s[0] <= start and end <= s[1]), None)
        expression = _base_expression(match.group(1))
        if span is None:
            pieces.append(source[last:start] + expression)
            last = end
        elif source[span[0] + 1 : span[1] - 1].strip() == match.group(0) and source[span[0]] in "'\"":
            pieces.append(source[last : span[0]] + expression)
            last = span[1]
        else:
            value = _lookup_base(base_cfg, match.group(1), path)
            pieces.append(source[last:start] + repr(str(value))[1:-1])
            last = end
    pieces.append(source[last:])
    return "".join(pieces)


def _base_expression(dotted: str) -> str:
    """``'layers.1.type'`` -> ``"_base_.layers[1].type"``: a number is a list index, not an attribute."""
    expression = BASE_KEY
    for part in dotted.split("."):
        expression += f"[{part}]" if part.isdigit() else f".{part}"
    return expression


def _string_spans(path: str, source: str) -> list[tuple[int, int]]:
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    spans = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING:
                start = line_starts[token.start[0] - 1] + token.start[1]
                end = line_starts[token.end[0] - 1] + token.end[1]
                spans.append((start, end))
    except (tokenize.TokenError, SyntaxError) as error:
        raise ConfigError(f"{path}: cannot read the file as Python: {error}") from None
    return spans


def _lookup_base(base_cfg: ConfigDict, dotted: str, path: str) -> Any:
    value: Any = base_cfg
    for part in dotted.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ConfigError(
                f"{path}: {{{{_base_.{dotted}}}}} refers to a key that the base files do not define "
                f"('{part}' is missing); check the name against the _base_ files"
            )
    return copy.deepcopy(value)


# ---------------------------------------------------------------------------- .json / .yaml
def _parse_data(path: str, source: str, suffix: str) -> dict:
    if suffix == ".json":
        try:
            data = json.loads(source)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}, line {error.lineno}: invalid JSON: {error.msg}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"{path}: reading YAML configs needs PyYAML; install it with "
                f"{extra_install_hint('yaml')} (or use a .py or .json config)"
            ) from None
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}, line {mark.line + 1}" if mark is not None else path
            raise ConfigError(f"{where}: invalid YAML: {error}") from None
        data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top, got {type(data).__name__}")
    return data


def _substitute_data(value: Any, base_cfg: ConfigDict, path: str) -> Any:
    if isinstance(value, dict):
        return ConfigDict({k: _substitute_data(v, base_cfg, path) for k, v in value.items()})
    if isinstance(value, list):
        return [_substitute_data(v, base_cfg, path) for v in value]
    if isinstance(value, str) and "{{" in value:
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole:
            return _lookup_base(base_cfg, whole.group(1), path)
        return _PLACEHOLDER.sub(lambda m: str(_lookup_base(base_cfg, m.group(1), path)), value)
    return value


# ---------------------------------------------------------------------------- merging
def merge(base: dict, child: dict) -> ConfigDict:
    """Merge ``child`` over ``base``; neither is changed.

    Dicts merge key by key, recursively; lists and scalars in ``child`` replace the base's;
    a child dict with ``_delete_=True`` replaces the base dict instead of merging into it.
    A base value of the user's own dict subclass keeps its class.
    """
    result = copy.deepcopy(dict(base))
    for key, value in child.items():
        if isinstance(value, dict) and value.get(DELETE_KEY, False):
            result[key] = strip_delete_keys(value)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = rebuild_mapping(result[key], merge(result[key], value), ConfigDict)
        else:
            result[key] = strip_delete_keys(value)
    return ConfigDict(result)


def strip_delete_keys(value: Any) -> Any:
    """A deep copy of ``value`` without ``_delete_`` keys."""
    if isinstance(value, dict):
        items = {k: strip_delete_keys(v) for k, v in value.items() if k != DELETE_KEY}
        return rebuild_mapping(value, items, ConfigDict)
    if type(value) in (list, tuple):
        return type(value)(strip_delete_keys(v) for v in value)
    return copy.deepcopy(value)
