"""Griffe extension for the API reference: read our docstrings' reStructuredText habits as
Markdown.

- Doctests are titled ``Example:`` (singular), which the Google-style parser does not know as
  a section, so the ``>>>`` lines would render as prose; the title becomes ``Examples:``.
- Sphinx roles (``:meth:`step```, ``:class:`~x.Y```) would show literally; they become code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:\s*$", re.M)
SPHINX_ROLE = re.compile(r":(?:meth|class|attr|func|data|mod|obj|exc):`~?([^`]+)`")


class DocstringMarkup(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = EXAMPLE_TITLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = SPHINX_ROLE.sub(r"`\1`", text)
