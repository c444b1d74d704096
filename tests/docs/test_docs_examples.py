"""Every Python example and config in docs/*.md, run as the page shows it (the pages must stay true).

How a page's fenced blocks are treated (docs/architecture.md, "Writing docs", says the same):

- A ```python block without a title runs; the blocks of one page run in order, in one
  namespace, in a scratch folder that holds a copy of the repository's ``configs/``.
- A ```python title="PATH" block is a file: it is written to PATH in that folder. A file
  under ``configs/`` is a config: it is loaded with ``Config.fromfile``, and when it is a
  complete config (it has a ``model``) it is built and trained for 2 iterations and
  validated for 1, as ``tools/train.py --dry-run`` does.
- ``<!-- not run: REASON -->`` right before a block leaves it out; the reason is required.
- ``<!-- expect-error -->`` right before a block means it must raise; the next ```text
  block is the message (``...`` stands for any text), and the error must match it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
DOCS = REPO / "docs"

FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(?P<kind>not run|expect-error)\s*:?(?P<reason>.*?)-->\s*$", re.S)
TITLE = re.compile(r'title="(?P<title>[^"]+)"')


@dataclass
class Block:
    page: str
    line: int
    language: str
    title: str | None
    body: str
    mark: str | None  # 'not run', 'expect-error' or None
    reason: str
    expected_error: str | None = None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        info = match.group("info").strip()
        language = info.split()[0] if info else ""
        title = TITLE.search(info)
        before = text[: match.start()].rstrip()
        mark = MARK.search(before[before.rfind("\n") + 1:]) if before else None
        blocks.append(Block(
            page=path.name,
            line=text.count("\n", 0, match.start()) + 1,
            language=language,
            title=title.group("title") if title else None,
            body=match.group("body"),
            mark=mark.group("kind") if mark else None,
            reason=mark.group("reason").strip() if mark else "",
        ))
    for index, block in enumerate(blocks):
        if block.mark == "expect-error":
            following = [b for b in blocks[index + 1:] if b.language == "text"]
            block.expected_error = following[0].body.strip() if following else None
    return blocks


PAGES = sorted(DOCS.rglob("*.md"))


def python_blocks(path: Path) -> list[Block]:
    return [b for b in parse_blocks(path) if b.language == "python"]


def test_the_docs_have_pages_with_examples():
    names = {p.name for p in PAGES}
    assert {"getting-started.md", "configs.md", "optim-wrapper.md", "extending.md"} <= names
    assert sum(len(python_blocks(p)) for p in PAGES) >= 40


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_mark_has_a_reason_and_every_expected_error_a_message(page):
    for block in parse_blocks(page):
        if block.mark == "not run":
            assert len(block.reason) >= 10, f"{block}: '<!-- not run: ... -->' needs a reason"
        if block.mark == "expect-error":
            assert block.expected_error, f"{block}: an expect-error block needs the message in a ```text block after it"
        if block.language == "python" and block.title is None and block.mark is None:
            compile(block.body, str(block), "exec")  # a syntax error fails here with the place


def _error_matches(expected: str, message: str) -> bool:
    for line in expected.splitlines():
        line = line.strip().removeprefix("config error: ")  # what tools/train.py puts before it
        pattern = ".*?".join(re.escape(part.strip()) for part in line.split("..."))
        if line and not re.search(pattern, message, flags=re.S):
            return False
    return True


def _dry_run():
    spec = importlib.util.spec_from_file_location("_docs_train_tool", REPO / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dry_run


@contextlib.contextmanager
def isolated_registries():
    """Classes a page registers are forgotten afterwards, so pages (and the README's test) can
    use the same example names."""
    from minirunner.registry import root

    registries = [value for value in vars(root).values() if type(value).__name__ == "Registry"]
    for registry in registries:
        registry.import_from_location()  # what it registers lazily belongs to the snapshot
    saved = [(r, dict(r._module_dict), dict(r._children)) for r in registries]
    try:
        yield
    finally:
        for registry, modules, children in saved:
            registry._module_dict.clear()
            registry._module_dict.update(modules)
            registry._children.clear()
            registry._children.update(children)


def run_block(block: Block, namespace: dict, folder: Path) -> None:
    from minirunner.config import Config

    if block.title is not None:
        path = folder / block.title
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.body, encoding="utf-8")
        if not block.title.startswith("configs/"):
            return
        cfg = Config.fromfile(path)
        if "model" in cfg:
            _dry_run()(cfg)
        return
    exec(compile(block.body, str(block), "exec"), namespace)


PAGES_WITH_PYTHON = [p for p in PAGES if python_blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page, tmp_path, monkeypatch):
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # modules a page writes (custom_imports)
    namespace: dict = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    ran = 0
    try:
        with isolated_registries():
            for block in python_blocks(page):
                if block.mark == "not run":
                    continue
                if block.mark == "expect-error":
                    with pytest.raises(Exception) as raised:
                        run_block(block, namespace, tmp_path)
                    assert _error_matches(block.expected_error, str(raised.value)), (
                        f"{block}: the error was\n{raised.value}\nbut the page shows\n{block.expected_error}"
                    )
                else:
                    try:
                        run_block(block, namespace, tmp_path)
                    except Exception as error:
                        raise AssertionError(f"{block} failed: {type(error).__name__}: {error}") from error
                ran += 1
    finally:
        # Modules the page wrote (custom_imports) are forgotten with the scratch folder.
        for name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
                del sys.modules[name]
    assert ran, f"{page.name}: no example ran"


def test_shell_commands_name_tools_and_configs_that_exist():
    """`python tools/x.py configs/y.py` in a ```bash block names files of this repository."""
    for page in PAGES:
        for block in parse_blocks(page):
            if block.language not in ("bash", "sh", "console"):
                continue
            for tool in re.findall(r"\btools/[\w./]+", block.body):
                assert (REPO / tool).exists(), f"{page.name}: {tool} does not exist"
            for config in re.findall(r"\bconfigs/[\w/]+\.py", block.body):
                written = any(b.title == config for p in PAGES for b in parse_blocks(p))
                assert (REPO / config).exists() or written, f"{page.name}: {config} does not exist"
