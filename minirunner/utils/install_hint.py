"""The one wording for "install this optional extra" in error messages.

minirunner is installed from its checkout (``pip install -e .``), not from a package
index, so a hint must never ask pip for a package named minirunner with extras: that
would fetch an unrelated package of that name from the index. The README's "Optional extras" section uses this form too.
"""

from __future__ import annotations


def extra_install_hint(extra: str) -> str:
    """The command that installs the optional extra ``extra`` (e.g. ``'yaml'``).

    Example:
        >>> extra_install_hint('yaml')
        "pip install -e '.[yaml]' (run in the minirunner checkout, in its environment)"
    """
    return f"pip install -e '.[{extra}]' (run in the minirunner checkout, in its environment)"
