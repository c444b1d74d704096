"""`TrackerBackend`: what the MLflow and W&B backends share.

A tracker run is opened at the first log line, not when the backend is built: by then
``--resume`` has restored the message hub, which names the run to continue (see
``tracker_runs``). Every tracker call runs on a :class:`BackgroundCalls` worker, so training
never waits for the tracker; ``close`` waits a bounded time for what is still queued.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable

from minirunner.logging import MessageHub

from .background import BackgroundCalls
from .base_vis_backend import BaseVisBackend, work_dir_of
from .tracker_runs import RunChoice, choose_run, remember_run


class TrackerBackend(BaseVisBackend):
    """Base of the tracker backends: opens the run lazily and queues every call.

    Subclasses implement :meth:`_open_run` (returns the run id), :meth:`_log_config` and
    :meth:`_finish_run`, and send their calls through :meth:`_submit`.

    Args:
        save_dir: the run's log folder ``<work_dir>/<timestamp>``.
    """

    #: How long :meth:`close` waits for queued calls before giving up on them (seconds).
    close_timeout: float = 30.0
    #: How long :attr:`experiment` waits for the run to open (seconds).
    open_timeout: float = 60.0

    def __init__(self, save_dir: str) -> None:
        super().__init__(save_dir)
        self._work_dir = work_dir_of(save_dir)
        self._calls: BackgroundCalls | None = None
        self._config: Any = None
        self._opening = False  # the opening of the run is queued
        self._open_in_worker = False  # the worker has opened it (a failed config upload retries only that)
        self._new_run = False  # set by _open_run when it created the run
        #: The tracker's id of the run this backend logs to (None until it is open).
        self.run_id: str | None = None
        self._run_key: str | None = None

    # ------------------------------------------------------------------ for subclasses
    def _open_run(self, choice: RunChoice) -> str:
        """Open the run ``choice.run_key`` (find it when ``choice.continued``, else create it);
        return the tracker's run id (worker thread)."""
        raise NotImplementedError

    def _new_run_key(self) -> str:
        """A fresh key for a new run."""
        return uuid.uuid4().hex

    def _log_config(self, config: Any, new_run: bool) -> None:
        """Record the config with the open run (``new_run``: this backend created it; worker thread)."""

    def _finish_run(self) -> None:
        """Mark the run finished (worker thread)."""

    def _is_permanent(self, error: Exception) -> bool:
        """Whether ``error`` would come back on every retry (a refused value, not an outage)."""
        return False

    def _submit(self, call: Callable[[], None]) -> None:
        """Queue ``call`` behind the opening of the run."""
        if self._calls is None:
            self._calls = BackgroundCalls(type(self).__name__, is_permanent=self._is_permanent)
        if not self._opening:
            self._opening = True
            hub = MessageHub.get_current_instance()
            if self._run_key is not None:  # used again after close(): the same run
                choice = RunChoice(run_key=self._run_key, continued=True)
            else:
                # On the main thread, now: a resume restored the hub before the first log line,
                # and the next checkpoint must name this run even if the tracker is slow.
                choice = choose_run(hub, type(self).__name__, self._work_dir, self._new_run_key())
                self._run_key = choice.run_key
                remember_run(hub, type(self).__name__, choice.run_key, self._work_dir)
            self._calls.submit(lambda: self._open(choice, hub))
        self._calls.submit(call)

    # ------------------------------------------------------------------ the backend API
    @property
    def experiment(self) -> Any:
        """Wait (up to :attr:`open_timeout` s) for the run to open; subclasses return the
        tracker's object."""
        self._submit(lambda: None)
        assert self._calls is not None
        self._calls.wait(self.open_timeout)
        return None

    def add_config(self, config: Any, **kwargs: Any) -> None:
        """Keep the config; it is logged when the run opens (at the first log line)."""
        self._config = config
        if self._opening:  # queued behind the opening, so it sees the open run
            self._submit(lambda: self._log_config(config, new_run=self._new_run))

    def close(self) -> None:
        """Finish the run and wait up to :attr:`close_timeout` s for the queued calls."""
        if self._calls is None and self._config is None:
            return  # nothing was logged: no run to open
        self._submit(self._finish_run)
        assert self._calls is not None
        self._calls.close(self.close_timeout)
        self._calls = None
        self._open_in_worker = False
        self._opening = False  # used again (a test after training): the same run continues

    # ------------------------------------------------------------------ the worker thread
    def _open(self, choice: RunChoice, hub: MessageHub) -> None:
        if not self._open_in_worker:
            self.run_id = self._open_run(choice)
            self._open_in_worker = True
            remember_run(hub, type(self).__name__, choice.run_key, self._work_dir, self.run_id)
        if self._config is not None:
            self._log_config(self._config, new_run=self._new_run)
