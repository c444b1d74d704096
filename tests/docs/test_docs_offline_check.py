"""The docs build's check that a page fetches nothing from another host (docs/_build/hooks.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HOOKS = Path(__file__).parents[2] / "docs" / "_build" / "hooks.py"


@pytest.fixture(scope="module")
def external_resources():
    spec = importlib.util.spec_from_file_location("_docs_build_hooks", HOOKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.external_resources


def site(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_local_assets_and_plain_links_pass(external_resources, tmp_path):
    folder = site(tmp_path, {
        "index.html": '<link rel="canonical" href="http://127.0.0.1:8000/index.html">'
                      '<link rel="stylesheet" href="assets/main.css"><script src="assets/app.js"></script>'
                      '<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a><img src="img/a.png">',
        "assets/main.css": "body { font-family: system-ui; background: url(img/x.png); }",
        "assets/javascripts/bundle.js": 'x=typeof ResizeObserver=="undefined"?load("https://unpkg.com/resize-observer-polyfill"):0',
    })
    assert external_resources(folder) == []


@pytest.mark.parametrize("name, text", [
    ("index.html", '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'),
    ("index.html", '<script src="//cdn.jsdelivr.net/npm/x.js"></script>'),
    ("index.html", '<link href="https://example.com/icon.png" rel="icon">'),
    ("page.html", "<img src='http://example.com/logo.png'>"),
    ("page.html", '<div class="mermaid">graph LR; a-->b</div>'),
    ("assets/main.css", '@import "https://fonts.googleapis.com/css2?family=Inter";'),
    ("assets/main.css", "h1 { background: url( 'https://example.com/bg.png' ); }"),
    ("assets/javascripts/extra.js", 'load("https://unpkg.com/other-library")'),
])
def test_a_resource_from_another_host_is_found(external_resources, tmp_path, name, text):
    found = external_resources(site(tmp_path, {name: text}))
    assert found and all(place.startswith(name) for place in found)
