"""Stopping a training loop cleanly on SIGTERM or SIGINT (a preempted job, Ctrl-C).

The loop finishes the current iteration, saves a checkpoint, logs where it is and raises
:class:`TrainingInterrupted`, which exits the process with status 143 (SIGTERM) or 130
(SIGINT). A second signal exits at once. Under torchrun the ranks agree on stopping at the
same iteration before anyone saves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator

import torch

from minirunner import dist
from minirunner.logging import print_log

from minirunner.checkpoint import wait_for_checkpoint_writes

_NEVER = sys.maxsize  # an iteration count no run reaches: "no signal check due"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Under torchrun the ranks agree on a signal with one tiny all_reduce, spaced so that it
# runs about once a second (rank 0 times the iterations): cheap, and quick to react.
_AGREE_SECONDS = 1.0
_MAX_AGREE_INTERVAL = 1000


class TrainingInterrupted(SystemExit):
    """Raised when a training loop stopped on SIGTERM or SIGINT after saving a checkpoint.

    A ``SystemExit``: left uncaught, the process exits with ``128 + signum`` (143 for
    SIGTERM, 130 for SIGINT), as a shell reports a process killed by that signal.

    Attributes:
        signum: the signal that stopped training.
        checkpoint: the path of the checkpoint to resume from.
    """

    def __init__(self, signum: int, checkpoint: str | None) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.checkpoint = checkpoint


class InterruptibleMixin:
    """Signal handling for the training loops (they inherit it).

    The loop wraps its run in :meth:`_stop_on_signals`, and after each iteration compares
    ``self._iter`` with ``self._check_at``: only when a check is due does it call
    :meth:`_stop_now`, and on True :meth:`_save_and_exit`.
    """

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """For the duration of a run: catch SIGTERM/SIGINT, restore the old handlers after,
        and wait for checkpoint writes still finishing in the background."""
        self._received = self._stop_signal = None
        self._distributed = dist.is_distributed()
        # Distributed: the first agreement is due after one iteration, then as rank 0 says.
        self._check_at = self._iter + 1 if self._distributed else _NEVER
        self._agreed_at = (time.perf_counter(), self._iter)
        previous = {}
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for signum in _SIGNALS:
                try:
                    previous[signum] = signal.signal(signum, self._on_signal)
                except (OSError, ValueError):
                    pass
        failed = True
        try:
            yield
            failed = False
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            # After an error the checkpoint being written still lands (a resume needs it),
            # and its own failure, if any, must not hide the error.
            error = wait_for_checkpoint_writes(raise_error=not failed)
            if error is not None:
                print_log(f"writing the last checkpoint failed too: {error}", logger="current", level=logging.ERROR)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._received is not None:
            os.write(2, f"\n{signal.Signals(signum).name} again: exiting at once\n".encode())
            os._exit(128 + signum)
        self._received = signum
        if not self._distributed:
            self._check_at = 0  # due at the end of the current iteration
        # Straight to stderr: a handler runs between any two bytecodes, possibly inside a
        # logging handler that holds its lock. The log gets the outcome once it is saved.
        os.write(
            2,
            f"\nreceived {signal.Signals(signum).name}: finishing the current iteration, then saving a "
            "checkpoint (send it again to exit at once)\n".encode(),
        )

    def _stop_now(self) -> bool:
        """At an iteration boundary where a check is due: stop for a signal? Every rank
        calls this at the same iterations and gets the same answer."""
        if not self._distributed:
            self._stop_signal = self._received
            return self._stop_signal is not None
        now = time.perf_counter()
        interval = 0
        if dist.get_rank() == 0:
            since, at = self._agreed_at
            last = max(self._iter - at, 1)
            per_iter = (now - since) / last
            target = _MAX_AGREE_INTERVAL if per_iter <= 0 else int(_AGREE_SECONDS / per_iter)
            # At most double each time: one slow first iteration must not set a long first
            # interval, and a job signalled early still stops within a few iterations.
            interval = max(1, min(target, 2 * last, _MAX_AGREE_INTERVAL))
        device = torch.device("cpu")
        if torch.distributed.get_backend() == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        received = self._received
        flags = torch.tensor(
            [received == signal.SIGTERM, received == signal.SIGINT, interval], dtype=torch.long, device=device
        )
        terms, interrupts, interval = dist.all_reduce(flags).tolist()
        self._check_at = self._iter + max(int(interval), 1)
        self._agreed_at = (now, self._iter)
        if terms or interrupts:
            self._stop_signal = signal.SIGTERM if terms else signal.SIGINT
        return self._stop_signal is not None

    def _save_and_exit(self) -> None:
        """Save a checkpoint of where training stopped, then raise TrainingInterrupted."""
        runner = self.runner
        signum = int(self._stop_signal)
        last = getattr(runner, "_last_checkpoint", None)
        if last is not None and tuple(last[:2]) == (self._epoch, self._iter):
            path = last[2]  # a checkpoint hook saved this very point already
        else:
            hook = runner.get_hook("checkpoint") if hasattr(runner, "get_hook") else None
            save = getattr(hook, "save_interrupted", None)
            if save is not None:
                path = save(runner)
            else:
                path = runner.save_checkpoint(
                    runner.work_dir, f"iter_{self._iter}.pth", by_epoch=False,
                    meta={"epoch": self._epoch, "iter": self._iter},
                )
        wait_for_checkpoint_writes()
        # Other ranks wait for rank 0's file: a rank that exits first makes torchrun stop
        # the others, possibly in the middle of the write.
        dist.barrier()
        runner.logger.warning(
            f"{signal.Signals(signum).name}: training stopped after iteration {self._iter}; "
            f"checkpoint: {path}. Resume with `--resume auto` (resume=True in the config)"
        )
        raise TrainingInterrupted(signum, path)


