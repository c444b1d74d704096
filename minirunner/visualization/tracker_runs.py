"""Which tracker run a training run logs to, kept across resumes.

The runs are recorded in the message hub's runtime info under ``tracker_runs``. The checkpoint
already saves the hub (``checkpoint['message_hub']``) and ``--resume`` restores it before the
first log line, so the records travel with the checkpoints without a checkpoint field of their own.

A record holds a ``run_key`` chosen on the main thread when logging starts (so even the first
checkpoint names the run, however slow the tracker is to create it), the tracker's ``run_id``
once the run exists, and the work dir that wrote it: a resume into another work dir (a branch)
is told apart from a resume of the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

from minirunner.logging import MessageHub

_INFO_KEY = "tracker_runs"


@dataclass(frozen=True)
class RunChoice:
    """The run a tracker backend logs to: ``run_key`` names it; ``continued`` says whether it
    may exist already; a branch names its parent's key and, when known, the parent's run id."""

    run_key: str
    continued: bool = False
    parent_key: str | None = None
    parent_run_id: str | None = None


def choose_run(hub: MessageHub, tracker: str, work_dir: str, new_key: str) -> RunChoice:
    """Continue the run the resumed checkpoint names if it was written in ``work_dir``; else
    start the run ``new_key``, naming the checkpoint's run (if any) as its parent."""
    record = (hub.get_info(_INFO_KEY) or {}).get(tracker)
    if not isinstance(record, dict) or not record.get("run_key"):
        return RunChoice(run_key=new_key)
    if record.get("work_dir") == work_dir:
        return RunChoice(run_key=str(record["run_key"]), continued=True)
    return RunChoice(run_key=new_key, parent_key=str(record["run_key"]), parent_run_id=record.get("run_id"))


def remember_run(hub: MessageHub, tracker: str, run_key: str, work_dir: str, run_id: str | None = None) -> None:
    """Record the run in ``hub``, so the next checkpoint holds it."""
    runs = dict(hub.get_info(_INFO_KEY) or {})
    runs[tracker] = {"run_key": run_key, "run_id": run_id, "work_dir": work_dir}
    # A new dict, never an update in place: the main thread may be copying the old one into
    # a checkpoint while a tracker's worker thread records the run id.
    hub.update_info(_INFO_KEY, runs)
