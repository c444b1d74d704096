"""`ProfilerHook`: profile the first epochs or iterations of training with ``torch.profiler``."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import socket
import time
from collections.abc import Mapping
from typing import Any, Callable

import torch

from minirunner import dist
from minirunner.logging import print_log
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError

from .hook import Hook

_TRACE_TYPES = ("log_trace", "tb_trace")
_TABLE_ROWS = 15


@HOOKS.register_module()
class ProfilerHook(Hook):
    """Profile a window at the start of training and write what ``torch.profiler`` saw.

    The window is the first ``profile_times`` epochs (``by_epoch=True``) or iterations of
    this run (counted from where a resumed run starts). When it ends, every rank writes a
    Chrome trace (open it in https://ui.perfetto.dev or ``chrome://tracing``) into the run's
    log folder, ``<work_dir>/<timestamp>/profiler/trace_rank<r>.json``, and the log gets a
    table of the operators that took the most time. After the window the profiler is gone:
    later iterations run unprofiled. The arguments are the reference's (MMEngine's).

    Args:
        by_epoch: count ``profile_times`` in epochs (True) or iterations.
        profile_times: how many epochs or iterations to profile.
        activity_with_cpu: record CPU activity.
        activity_with_cuda: record CUDA kernels (ignored, with a warning, without CUDA).
        schedule: arguments of ``torch.profiler.schedule`` (``wait``, ``warmup``,
            ``active``, ``repeat``, ``skip_first``) to record only some iterations of the
            window; each recorded cycle then gets its own trace, ``..._step<N>.json``.
        on_trace_ready: also hand each recording to a callable taking the profiler (called
            first: torch exports a recording only once, so if it exports, the Chrome trace
            above is skipped with a warning), or ``dict(type='log_trace', sort_by=...,
            row_limit=...)`` (the arguments of the logged table), or
            ``dict(type='tb_trace', dir_name=..., worker_name=..., use_gzip=...)``: a copy of
            the trace in TensorBoard's layout, by default in ``<log folder>/tf_tracing_logs``
            (view it with ``pip install torch-tb-profiler``).
        record_shapes: record the operators' input shapes.
        profile_memory: record tensor memory allocation and release.
        with_stack: record the source location of each operator.
        with_flops: estimate the FLOPs of matrix multiplications and convolutions.
        json_trace_path: where the Chrome trace goes instead, relative to the run's log
            folder (it must stay inside the work dir); with several processes, each rank's
            file gets ``_rank<r>`` before ``.json``.

    Example:
        >>> custom_hooks = [dict(type='ProfilerHook', by_epoch=False, profile_times=20)]
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        *,
        by_epoch: bool = True,
        profile_times: int = 1,
        activity_with_cpu: bool = True,
        activity_with_cuda: bool = False,
        schedule: Mapping[str, Any] | None = None,
        on_trace_ready: Callable[[Any], Any] | Mapping[str, Any] | None = None,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
        json_trace_path: str | None = None,
    ) -> None:
        for key, value in (("by_epoch", by_epoch), ("activity_with_cpu", activity_with_cpu),
                           ("activity_with_cuda", activity_with_cuda)):
            if not isinstance(value, bool):
                raise ConfigError(f"must be True or False, got {value!r}", key=key)
        if isinstance(profile_times, bool) or not isinstance(profile_times, int) or profile_times < 1:
            raise ConfigError(
                f"must be a positive int (how many {'epochs' if by_epoch else 'iterations'} to profile), "
                f"got {profile_times!r}",
                key="profile_times",
            )
        if not torch.autograd.kineto_available():
            raise ConfigError(
                f"this torch build ({torch.__version__}) has no Kineto profiler; install an official "
                "PyTorch wheel or remove the ProfilerHook",
                key="type",
            )
        from torch import profiler

        self.activities = []
        if activity_with_cpu:
            self.activities.append(profiler.ProfilerActivity.CPU)
        if activity_with_cuda:
            if torch.cuda.is_available():
                self.activities.append(profiler.ProfilerActivity.CUDA)
            else:
                print_log("ProfilerHook: activity_with_cuda=True, but CUDA is not available; "
                          "recording CPU activity only", logger="current", level=logging.WARNING)
        if not self.activities:
            raise ConfigError(
                "records nothing: set activity_with_cpu=True (or activity_with_cuda=True on a CUDA machine)",
                key="activity_with_cpu",
            )
        self.schedule = None
        if schedule is not None:
            if not isinstance(schedule, Mapping):
                raise ConfigError(f"must be a dict of torch.profiler.schedule arguments, got {schedule!r}",
                                  key="schedule")
            try:
                self.schedule = profiler.schedule(**schedule)
            except (TypeError, ValueError, AssertionError) as error:
                raise ConfigError(
                    f"torch.profiler.schedule({', '.join(f'{k}={v!r}' for k, v in schedule.items())}) "
                    f"failed: {error}; it takes wait, warmup, active, repeat and skip_first",
                    key="schedule",
                ) from error
        if on_trace_ready is not None and not callable(on_trace_ready):
            if not isinstance(on_trace_ready, Mapping) or on_trace_ready.get("type") not in _TRACE_TYPES:
                raise ConfigError(
                    f"must be a callable, dict(type='log_trace', ...) or dict(type='tb_trace', ...), "
                    f"got {on_trace_ready!r}",
                    key="on_trace_ready",
                )
        if json_trace_path is not None and not isinstance(json_trace_path, (str, os.PathLike)):
            raise ConfigError(f"must be a file path or None, got {json_trace_path!r}", key="json_trace_path")
        self.by_epoch = by_epoch
        self.profile_times = profile_times
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.json_trace_path = json_trace_path
        self.profiler: Any = None  # a torch.profiler.profile while the window is open
        self._end = 0  # the epoch or iteration count (runner.epoch/iter + 1) that ends the window
        self._started = False
        self._trace_file = ""
        self._table_args: dict[str, Any] = {}
        self._user_handler: Callable[[Any], Any] | None = None
        self._logger: Any = None

    # ------------------------------------------------------------------ the window
    def before_train_epoch(self, runner: Any) -> None:
        """Open the window at the first epoch of this run."""
        if self._started:
            return
        self._started = True
        start = runner.epoch if self.by_epoch else runner.iter
        total = runner.max_epochs if self.by_epoch else runner.max_iters
        unit = "epoch" if self.by_epoch else "iteration"
        if start + self.profile_times > total:
            raise ConfigError(
                f"{self.profile_times} {unit}(s) to profile from {unit} {start + 1}, but the run ends at "
                f"{unit} {total}; lower profile_times",
                key="profile_times",
            )
        self._end = start + self.profile_times
        self._prepare_outputs(runner)
        from torch import profiler

        self.profiler = profiler.profile(
            activities=self.activities,
            schedule=self.schedule,
            on_trace_ready=self._trace_ready,
            record_shapes=self.record_shapes,
            profile_memory=self.profile_memory,
            with_stack=self.with_stack,
            with_flops=self.with_flops,
        )
        self.profiler.__enter__()
        runner.logger.info(f"profiler: profiling {unit}s {start + 1}-{self._end} (the run is slower meanwhile)")

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self.profiler is None:
            return
        self.profiler.step()
        if not self.by_epoch and runner.iter + 1 >= self._end:
            self._close()

    def after_train_epoch(self, runner: Any) -> None:
        if self.profiler is not None and self.by_epoch and runner.epoch + 1 >= self._end:
            self._close()

    def after_train(self, runner: Any) -> None:
        # Training ended inside the window (stopped early): keep what was recorded.
        if self.profiler is not None:
            self._close()

    def _close(self) -> None:
        profiler, self.profiler = self.profiler, None
        profiler.__exit__(None, None, None)  # calls _trace_ready for the last recording

    # ------------------------------------------------------------------ outputs
    def _prepare_outputs(self, runner: Any) -> None:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        path = self.json_trace_path or os.path.join("profiler", "trace.json")
        path = os.path.normpath(os.path.join(runner.log_dir, os.fspath(path)))
        work_dir = os.path.abspath(runner.work_dir)
        if os.path.commonpath([os.path.abspath(path), work_dir]) != work_dir:
            raise ConfigError(
                f"{path} is outside the work dir {work_dir}; a run writes only there. Give a path "
                "relative to the run's log folder",
                key="json_trace_path",
            )
        stem, extension = os.path.splitext(path)
        extension = extension or ".json"
        if world_size > 1 or self.json_trace_path is None:
            stem = f"{stem}_rank{rank}"
        self._trace_file = stem + extension
        cfg = dict(self.on_trace_ready) if isinstance(self.on_trace_ready, Mapping) else {}
        kind = cfg.pop("type", None)
        self._table_args = {"row_limit": _TABLE_ROWS}
        self._user_handler = self.on_trace_ready if callable(self.on_trace_ready) else None
        if kind == "log_trace":
            self._table_args.update(cfg)
        elif kind == "tb_trace":
            self._user_handler = _TensorBoardCopy(os.path.join(runner.log_dir, cfg.pop("dir_name", "tf_tracing_logs")), **cfg)
            runner.logger.info(
                f"profiler: TensorBoard traces go to {self._user_handler.folder} (view them with "
                "pip install torch-tb-profiler)"
            )
        if "sort_by" not in self._table_args:
            cuda = torch.profiler.ProfilerActivity.CUDA in self.activities
            self._table_args["sort_by"] = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        self._logger = runner.logger

    def _trace_ready(self, profiler: Any) -> None:
        """Write the Chrome trace, log the table, and hand the trace to the configured handler."""
        path = self._trace_file
        if self.schedule is not None:
            stem, extension = os.path.splitext(path)
            path = f"{stem}_step{profiler.step_num}{extension}"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # torch exports a recording once: a user's callable that exports it too goes first.
        if self._user_handler is not None and not isinstance(self._user_handler, _TensorBoardCopy):
            self._user_handler(profiler)
        logger = self._logger
        try:
            profiler.export_chrome_trace(path)
        except RuntimeError as error:
            logger.warning(f"profiler: no Chrome trace at {path}: {error} (on_trace_ready exported it)")
        else:
            logger.info(f"profiler: Chrome trace written to {path} (open it in https://ui.perfetto.dev)")
            if isinstance(self._user_handler, _TensorBoardCopy):
                self._user_handler.copy(path)
        if dist.is_main_process():
            table = profiler.key_averages().table(**self._table_args)
            logger.info("profiler: top operators\n" + table)


class _TensorBoardCopy:
    """``tb_trace``: the Chrome trace under the name TensorBoard's profiler plugin looks for
    (``<worker>.<ms>.pt.trace.json``), as ``torch.profiler.tensorboard_trace_handler`` names
    it. A copy, because torch exports a recording only once."""

    def __init__(self, folder: str, worker_name: str | None = None, use_gzip: bool = False) -> None:
        self.folder = folder
        self.worker_name = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        self.use_gzip = use_gzip

    def copy(self, trace: str) -> None:
        os.makedirs(self.folder, exist_ok=True)
        target = os.path.join(self.folder, f"{self.worker_name}.{int(time.time() * 1000)}.pt.trace.json")
        if self.use_gzip:
            with open(trace, "rb") as source, gzip.open(target + ".gz", "wb") as zipped:
                shutil.copyfileobj(source, zipped)
        else:
            shutil.copyfile(trace, target)
