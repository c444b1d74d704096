"""Griffe extension for the API reference: our docstrings title their doctests ``Example:``
(singular), which the Google-style parser does not know as a section, so the ``>>>`` lines
would render as prose. This renames the title so they render as code."""

from __future__ import annotations

import re
from typing import Any

import griffe

EXAMPLE_TITLE = re.compile(r"^(\s*)Example:\s*$", re.M)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE_TITLE.sub(r"\1Examples:", obj.docstring.value)
