"""The README's examples, run as written, and its links into docs/ (the front page must stay true).

The README's blocks follow the same conventions as the pages' (docs/architecture.md, "Writing
docs"); the examples that used to be in the README live in the pages now, where
test_docs_examples.py runs them.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
README = REPO / "README.md"


@functools.cache
def _docs_examples():
    """tests/docs/test_docs_examples.py, loaded by path (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location("_docs_examples", Path(__file__).with_name("test_docs_examples.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_readme_has_an_example_and_every_block_is_marked_right():
    blocks = _docs_examples().parse_blocks(README)
    runnable = [b for b in blocks if b.language == "python" and b.mark != "not run"]
    assert runnable, "the README's example is gone"
    for block in blocks:
        if block.mark == "not run":
            assert len(block.reason) >= 10, f"{block}: '<!-- not run: ... -->' needs a reason"


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    examples = _docs_examples()
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    with examples.isolated_registries():
        for block in examples.python_blocks(README):
            if block.mark != "not run":
                examples.run_block(block, namespace, tmp_path)
    # The example's own claim: the linear model learns the digits (printed as a metrics dict).
    assert namespace["runner"].val()["accuracy/top1"] > 90.0
    assert "{'accuracy/top1': " in capsys.readouterr().out


def test_readme_links_into_docs_name_pages_that_exist_and_every_page_is_linked():
    text = README.read_text(encoding="utf-8")
    linked = set()
    for target in re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", text):
        assert (REPO / target).is_file(), f"README links to {target}, which does not exist"
        linked.add(target)
    pages = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert not pages - linked, f"pages the README does not link to: {sorted(pages - linked)}"


def test_the_readme_names_only_make_targets_that_exist():
    makefiles = "\n".join(p.read_text(encoding="utf-8") for p in [REPO / "Makefile", *(REPO / "mk").glob("*.mk")])
    defined = set(re.findall(r"^([\w-]+):", makefiles, flags=re.M))
    named = set(re.findall(r"`make ([\w-]+)", README.read_text(encoding="utf-8")))
    assert {"test", "train", "test-fast", "docs"} <= named
    assert not named - defined, f"the README names make targets that do not exist: {sorted(named - defined)}"
