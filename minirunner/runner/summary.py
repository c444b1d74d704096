"""Readable summaries of a run (kept here for ``tools/train.py``; they live in
:mod:`minirunner.logging.summary` so hooks can use them without importing the runner)."""

from minirunner.logging.summary import collect_env, format_environment, format_param_groups

__all__ = ["collect_env", "format_environment", "format_param_groups"]
