"""Suggestions for misspelled names in error messages."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``name``, best first.

    A case-insensitive exact match always comes first, so ``sgd`` suggests ``SGD``.
    """
    candidates = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in candidates}
    found = []
    if name.lower() in lowered:
        found.append(lowered[name.lower()])
    for match in difflib.get_close_matches(name, candidates, n=n, cutoff=0.6):
        if match not in found:
            found.append(match)
    if len(found) < n:
        # Case differences hide similar names from difflib (``adamw`` vs ``AdamW``).
        for match in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6):
            if lowered[match] not in found:
                found.append(lowered[match])
    return found[:n]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` (with a leading space), or ``''`` when nothing is close."""
    matches = closest_matches(name, candidates)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


def quoted_list(names: Iterable[str], limit: int = 30) -> str:
    """Render names as ``'a', 'b', 'c'``, cut after ``limit`` with a count of the rest."""
    names = sorted(str(n) for n in names)
    shown = ", ".join(repr(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown
