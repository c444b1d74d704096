"""The names a run takes when it starts: its log folder and its default scope, both unique
even for runs started in the same second."""

from __future__ import annotations

import os
import time

from minirunner.registry import DefaultScope

# Log folders handed out in this process: a runner's folder appears only with its first line
# logged, so a second runner built before that must not be given the same name.
_GIVEN: set[str] = set()


def fresh_log_dir(work_dir: str) -> tuple[str, str]:
    """The start time ``YYYYmmdd_HHMMSS`` and an unused log folder for it in ``work_dir``.

    Two runs started within one second (a quick run, then ``--resume``) would otherwise share
    ``<work_dir>/<timestamp>`` and write into each other's log file and ``vis_data``; the later
    one gets ``<timestamp>_2``, ``_3``, ... instead. Nothing is created here: a config error
    found later while building leaves no empty folder behind.
    """
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    log_dir = os.path.join(work_dir, timestamp)
    suffix = 2
    while log_dir in _GIVEN or os.path.exists(log_dir):
        log_dir = os.path.join(work_dir, f"{timestamp}_{suffix}")
        suffix += 1
    _GIVEN.add(log_dir)
    return timestamp, log_dir


def make_default_scope(experiment_name: str, scope: str | None) -> DefaultScope | None:
    """Make ``scope`` current under the run's name (a new name if that one is taken, as it
    is when two runners start in the same second); None sets no scope."""
    if scope is None:
        return None
    name, count = experiment_name, 1
    while DefaultScope.check_instance_created(name):
        count += 1
        name = f"{experiment_name}#{count}"
    return DefaultScope.get_instance(name, scope_name=scope)
