"""Install hints in error messages name the checkout's extras, never a package on an index.

minirunner is installed with ``pip install -e .`` from its checkout; ``pip install
'minirunner[yaml]'`` would fetch whatever package of that name an index holds.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

import minirunner
from minirunner.config import Config
from minirunner.utils import ConfigError
from minirunner.utils.install_hint import extra_install_hint

PACKAGE_DIR = Path(minirunner.__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent

# `pip install minirunner[x]`, with or without quotes, `-U`, `--upgrade` and the like.
INDEX_HINT = re.compile(r"pip3?\s+install\s+(?:-{1,2}[\w-]+\s+)*[\"']?minirunner\s*\[")
# Any extra named in a checkout-relative hint: `.[x]`.
EXTRA_HINT = re.compile(r"pip3?\s+install\s+-e\s+[\"']?\.\[([\w,-]+)\]")


def _sources() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def _declared_extras() -> set[str]:
    with open(PROJECT_DIR / "pyproject.toml", "rb") as file:
        return set(tomllib.load(file)["project"]["optional-dependencies"])


def test_pattern_catches_the_index_form():
    # The scan below is only worth something if its pattern matches what it must reject.
    for bad in ("pip install 'minirunner[yaml]'", 'pip install "minirunner[plot]"',
                "pip install minirunner[vision]", "pip install -U minirunner[tensorboard]"):
        assert INDEX_HINT.search(bad), bad
    assert not INDEX_HINT.search(extra_install_hint("yaml"))
    assert not INDEX_HINT.search("pip install pyyaml")


def test_no_source_file_suggests_installing_minirunner_from_an_index():
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if INDEX_HINT.search(line)
    ]
    assert not offenders, "install hints must read pip install -e '.[extra]':\n" + "\n".join(offenders)


def test_hint_is_the_readme_form_for_a_declared_extra():
    hint = extra_install_hint("yaml")
    assert hint.startswith("pip install -e '.[yaml]'")
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[yaml]'" in readme


def test_every_extra_named_in_a_hint_is_declared_in_pyproject():
    declared = _declared_extras()
    named = {
        (path.relative_to(PROJECT_DIR), extra)
        for path in _sources()
        for group in EXTRA_HINT.findall(path.read_text(encoding="utf-8"))
        for extra in group.split(",")
    }
    undeclared = sorted(f"{path}: {extra}" for path, extra in named if extra not in declared)
    assert not undeclared, f"extras not in pyproject.toml ({sorted(declared)}): {undeclared}"


def test_reading_yaml_without_pyyaml_gives_the_checkout_hint(tmp_path, monkeypatch):
    path = tmp_path / "cfg.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` raise ImportError
    with pytest.raises(ConfigError) as info:
        Config.fromfile(path)
    message = str(info.value)
    assert "pip install -e '.[yaml]'" in message
    assert not INDEX_HINT.search(message)


def test_dumping_yaml_without_pyyaml_gives_the_checkout_hint(tmp_path, monkeypatch):
    cfg = Config(dict(a=1))
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ConfigError) as info:
        cfg.dump(str(tmp_path / "out.yaml"))
    message = str(info.value)
    assert "pip install -e '.[yaml]'" in message
    assert not INDEX_HINT.search(message)


def test_missing_torchvision_gives_the_checkout_hint(monkeypatch):
    from minirunner.dataset.vision import import_torchvision

    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(ImportError) as info:
        import_torchvision()
    message = str(info.value)
    assert "pip install -e '.[vision]'" in message
    assert not INDEX_HINT.search(message)
