"""Training loops: plain ``for`` statements around the hooks (validation and test: eval_loops.py).

The training loops end cleanly on SIGTERM and SIGINT; see :mod:`.interruption`.

Errors about a loop's own arguments name the argument alone (``max_epochs``): the runner
builds each loop inside ``config_key('train_cfg')`` (or ``val_cfg``, ``test_cfg``), which
adds the rest of the path. A dataloader that yields no batch is reported under its own key
(``train_dataloader``), whatever block the loop is built in.
"""

from __future__ import annotations

import bisect
import functools
from typing import Any, Iterator, Sequence

import torch

from minirunner import dist
from minirunner.dataset.builder import why_no_batches
from minirunner.dataset.worker_init import worker_init_fn
from minirunner.registry import LOOPS, FullKeyConfigError
from minirunner.utils import ConfigError

from .interruption import _NEVER, InterruptibleMixin


class BaseLoop:
    """A loop over one dataloader. ``runner`` calls :meth:`run`."""

    def __init__(self, runner: Any, dataloader: Any) -> None:
        self.runner = runner
        if isinstance(dataloader, dict):
            build = getattr(runner, "_build_loop_dataloader", None) or runner.build_dataloader
            dataloader = build(dataloader)
        self.dataloader = dataloader

    def run(self) -> Any:
        raise NotImplementedError


def skip_batches(dataloader: Any, count: int, samples: int | None = None) -> Iterator[Any]:
    """An iterator over ``dataloader`` that starts after its first ``count`` batches.

    Used to resume in the middle of an epoch. A sampler with ``set_start_index`` (the
    built-in ones) skips the indices without loading them (``samples`` of them when given,
    else ``count`` batches' worth); otherwise the batches are loaded and dropped. The
    global torch generator is left as it was: the uninterrupted run drew from it for this
    pass before the checkpoint was taken, so drawing again would shift everything after
    (dropout, augmentation in the main process).
    """
    state = torch.get_rng_state()
    sampler = getattr(dataloader, "sampler", None)
    batch_size = getattr(dataloader, "batch_size", None)
    if samples is None and batch_size is not None:
        samples = count * batch_size
    if samples is not None and batch_size is not None and hasattr(sampler, "set_start_index"):
        sampler.set_start_index(samples)
        iterator = iter(dataloader)
    else:
        iterator = iter(dataloader)
        for _ in range(count):
            if next(iterator, None) is None:
                break
    torch.set_rng_state(state)
    return iterator


def _length(dataloader: Any, default: int) -> int:
    try:
        return len(dataloader)
    except TypeError:  # an iterable dataset without a length: one endless pass
        return default


def _sampler_of(dataloader: Any) -> Any:
    sampler = getattr(dataloader, "sampler", None)
    if hasattr(sampler, "set_epoch") or hasattr(sampler, "seed"):
        return sampler
    return getattr(getattr(dataloader, "batch_sampler", None), "sampler", sampler)


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but max_epochs=True is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(value: Any, key: str, meaning: str, example: str) -> None:
    """Raise a ConfigError (key relative to the loop's config) unless ``value`` is an int >= 1."""
    if not _is_int(value) or value < 1:
        raise ConfigError(f"must be a positive int ({meaning}), got {value!r}; write e.g. {example}", key=key)


def _check_val_schedule(val_begin: Any, val_interval: Any, unit: str) -> None:
    _check_count(val_interval, "val_interval", f"validate every this many {unit}", "val_interval=1")
    if not _is_int(val_begin) or val_begin < 0:
        raise ConfigError(
            f"must be an int >= 0 (validation starts after this many {unit}), got {val_begin!r}; "
            "write e.g. val_begin=1",
            key="val_begin",
        )


def _dynamic_intervals(
    dynamic_intervals: Sequence[tuple[int, int]] | None, start_interval: int
) -> tuple[list[int], list[int]]:
    """Milestones and intervals: from each milestone on, validate every matching interval."""
    key = "dynamic_intervals"
    milestones, intervals = [0], [start_interval]
    for item in dynamic_intervals or []:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not all(_is_int(v) for v in item):
            raise ConfigError(
                f"each item must be (milestone, interval), two ints, got {item!r}; write e.g. "
                "dynamic_intervals=[(10, 1)] to validate every epoch from epoch 10 on",
                key=key,
            )
        if item[0] <= milestones[-1]:
            raise ConfigError(
                f"milestones must be positive and increase, got {dynamic_intervals!r}; sort the items "
                "by milestone",
                key=key,
            )
        if item[1] < 1:
            raise ConfigError(f"intervals must be positive ints, got {item!r}; use an interval >= 1", key=key)
        milestones.append(item[0])
        intervals.append(item[1])
    return milestones, intervals


def check_yields_batches(dataloader: Any, key: str, every_rank: bool) -> None:
    """Raise a ConfigError naming ``key`` (``train_dataloader``) when ``dataloader`` yields no batch.

    A loop over such a dataloader would "succeed" at nothing: zero iterations, checkpoints of
    an untrained model, metrics of no data. Training needs a batch on every rank (a rank
    without one would leave the others waiting for it); evaluation only on some rank, as a
    sampler with ``round_up=False`` may leave a rank without a sample. So the ranks compare
    their findings, and all raise the same error together (every rank builds the loops).
    """
    problems = dist.all_gather_object(why_no_batches(dataloader))
    empty = [rank for rank, problem in enumerate(problems) if problem is not None]
    if not empty or (not every_rank and len(empty) < len(problems)):
        return
    where = "" if len(empty) == len(problems) else f"on rank {empty[0]} of {len(problems)}, "
    raise FullKeyConfigError(where + problems[empty[0]], key=key)


class _TrainLoop(InterruptibleMixin, BaseLoop):
    """What both training loops share: counters, the stop flag, the validation schedule,
    the position in the data (saved in checkpoints) and stopping on signals."""

    def __init__(
        self,
        runner: Any,
        dataloader: Any,
        val_begin: int,
        val_interval: int,
        dynamic_intervals: Sequence[tuple[int, int]] | None,
    ) -> None:
        super().__init__(runner, dataloader)
        check_yields_batches(self.dataloader, "train_dataloader", every_rank=True)
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self._milestones, self._intervals = _dynamic_intervals(dynamic_intervals, val_interval)
        # The current pass over the dataloader: its epoch, and the iteration, batch and
        # sample (of this rank) it started at; a resumed pass starts past the consumed ones.
        self._pass_epoch = -1
        self._pass_start_iter = 0
        self._pass_start_batches = 0
        self._pass_start_samples = 0
        self._resume_skip: tuple[int | None, int] | None = None  # (samples, batches) to skip
        # Signals: the iteration at which the next check is due (_NEVER: none), the signal
        # this process received, and the one every rank agreed to stop on.
        self._check_at = _NEVER
        self._received: int | None = None
        self._stop_signal: int | None = None
        self._distributed = False
        self._agreed_at = (0.0, 0)
        # The per-iteration hooks, called without going through runner.call_hook (see
        # Runner.iteration_handlers); the lists follow later registrations.
        self._before_iter_handlers = runner.iteration_handlers("before_train_iter")
        self._after_iter_handlers = runner.iteration_handlers("after_train_iter")

    @property
    def max_epochs(self) -> int:
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        return self._max_iters

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def iter(self) -> int:
        return self._iter

    def _should_validate(self, done: int, total: int) -> bool:
        """After ``done`` epochs (or iterations) of ``total``: is it time to validate?"""
        position = bisect.bisect(self._milestones, done + 1) - 1  # as the reference: the next one
        self.val_interval = self._intervals[position]
        return (
            self.runner.val_loop is not None
            and done >= self.val_begin
            and (done % self.val_interval == 0 or done == total)
        )

    def _train_step(self, batch_idx: int, data_batch: Any) -> None:
        """``before_train_iter`` hooks, ``train_step``, ``after_train_iter`` hooks."""
        runner = self.runner
        for handler in self._before_iter_handlers:
            handler(runner, batch_idx=batch_idx, data_batch=data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        for handler in self._after_iter_handlers:
            handler(runner, batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1

    # ------------------------------------------------------------------ position in the data
    def _open_pass(self) -> tuple[Iterator[Any], int]:
        """An iterator for the current pass over the data, and the index of its first batch.

        After a resume inside a pass, the consumed samples are skipped without loading.
        """
        loader = self.dataloader
        self._seed_workers_for_epoch(loader)
        samples, batches = self._resume_skip or (0, 0)
        self._resume_skip = None
        if batches > 0 or samples:
            iterator = skip_batches(loader, batches, samples)
        else:
            iterator = iter(loader)
        batch_size = getattr(loader, "batch_size", None)
        self._pass_epoch = self._epoch
        self._pass_start_iter = self._iter
        self._pass_start_batches = batches
        self._pass_start_samples = samples if samples is not None else batches * (batch_size or 0)
        return iterator, batches

    def _seed_workers_for_epoch(self, loader: Any) -> None:
        # New workers start with each pass; giving the built-in worker_init_fn the epoch
        # makes their seeds depend on (seed, epoch, worker), so each epoch draws anew and
        # a resumed run's workers draw what the uninterrupted run's did.
        init = getattr(loader, "worker_init_fn", None)
        if (
            isinstance(init, functools.partial)
            and init.func is worker_init_fn
            and getattr(loader, "num_workers", 0) > 0
            and init.keywords.get("epoch") != self._epoch
        ):
            loader.worker_init_fn = functools.partial(worker_init_fn, *init.args, **{**init.keywords, "epoch": self._epoch})

    def progress_state(self, epoch: int, iteration: int) -> dict:
        """The data position to save with counters ``(epoch, iteration)``: the sampler's
        epoch and seed, and how many batches and samples of this rank that epoch has used."""
        loader = self.dataloader
        batch_size = getattr(loader, "batch_size", None)
        if self._resume_skip is not None and epoch == self._epoch and iteration == self._iter:
            samples, batches = self._resume_skip  # resumed, the pass not reopened yet
            if samples is None and batch_size is not None:
                samples = batches * batch_size
        elif epoch == self._pass_epoch:
            done = iteration - self._pass_start_iter
            batches = self._pass_start_batches + done
            samples = None if batch_size is None else self._pass_start_samples + done * batch_size
        else:  # the pass of that epoch has not started (the checkpoint ends an epoch)
            batches, samples = 0, (None if batch_size is None else 0)
        seed = getattr(_sampler_of(loader), "seed", None)
        return {
            "epoch": epoch,
            "batches": batches,
            "samples": samples,
            "batch_size": batch_size,
            "world_size": dist.get_world_size(),
            "epoch_length": _length(loader, 0),
            "seed": seed if isinstance(seed, int) else None,
        }

    def restore_progress(self, epoch: int, iteration: int, state: dict | None) -> list[str]:
        """Continue from counters ``(epoch, iteration)`` and a :meth:`progress_state`.

        Returns notes on what differs from the checkpoint's run (batch size, world
        size, sampler seed), for the runner to log.
        """
        self._epoch, self._iter = int(epoch), int(iteration)
        loader = self.dataloader
        if not state:  # an older checkpoint: derive the position from the counters
            batches = max(self._iter - self._epoch * _length(loader, 0), 0)
            self._resume_skip = (None, batches) if batches else None
            return []
        notes = []
        sampler = _sampler_of(loader)
        saved_seed = state.get("seed")
        if saved_seed is not None and isinstance(getattr(sampler, "seed", None), int) and sampler.seed != saved_seed:
            notes.append(f"sampler seed {saved_seed} from the checkpoint (this run's sampler had {sampler.seed})")
            sampler.seed = saved_seed
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self._epoch)
        batch_size = getattr(loader, "batch_size", None)
        world_size = dist.get_world_size()
        saved_batch, saved_world = state.get("batch_size"), int(state.get("world_size") or 1)
        samples, batches = state.get("samples"), int(state.get("batches") or 0)
        if saved_batch != batch_size:
            notes.append(f"batch_size {batch_size} from the config (the checkpoint's run used {saved_batch})")
        if saved_world != world_size:
            notes.append(f"world size {world_size} (the checkpoint's run had {saved_world})")
        if samples is not None and batch_size is not None:
            # The ranks have used the first samples * world_size positions of the epoch's
            # order between them; split that among this run's ranks.
            per_rank, rest = divmod(int(samples) * saved_world, world_size)
            if rest or per_rank % batch_size:
                notes.append(
                    f"the rest of epoch {self._epoch + 1} starts at sample {per_rank} of each rank, "
                    "inside a batch of the new size"
                )
            self._resume_skip = (per_rank, per_rank // batch_size) if per_rank else None
        else:
            if batches and (saved_batch != batch_size or saved_world != world_size):
                notes.append(f"skipping {batches} batches of the new size (no sample count to go by)")
            self._resume_skip = (None, batches) if batches else None
        saved_length = state.get("epoch_length")
        if saved_length and saved_length != _length(loader, 0) and saved_batch == batch_size:
            notes.append(f"{_length(loader, 0)} iterations per epoch (the checkpoint's run had {saved_length})")
        return notes

@LOOPS.register_module()
class EpochBasedTrainLoop(_TrainLoop):
    """Train for ``max_epochs`` epochs; validate every ``val_interval`` epochs from ``val_begin``.

    Args:
        runner: the runner.
        dataloader: a DataLoader or its config.
        max_epochs: the number of epochs.
        val_begin: the first epoch (counted from 1) after which to validate.
        val_interval: validate every this many epochs.
        dynamic_intervals: ``[(epoch, interval), ...]``: from ``epoch`` on, use ``interval``.
    """

    def __init__(
        self,
        runner: Any,
        dataloader: Any,
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
        dynamic_intervals: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        _check_count(max_epochs, "max_epochs", "the number of epochs to train", "max_epochs=12")
        _check_val_schedule(val_begin, val_interval, "epochs")
        super().__init__(runner, dataloader, val_begin, val_interval, dynamic_intervals)
        self._max_epochs = max_epochs
        self._max_iters = max_epochs * len(self.dataloader)

    def run(self) -> torch.nn.Module:
        """Run the remaining epochs and return the model."""
        runner = self.runner
        with self._stop_on_signals():
            runner.call_hook("before_train")
            while self._epoch < self._max_epochs and not self.stop_training:
                self.run_epoch()
                if self._stop_signal is not None:  # a signal stopped the epoch part-way
                    self._save_and_exit()
                if self._should_validate(self._epoch, self._max_epochs):
                    runner.val_loop.run()
                # Between epochs every rank is at the same point: a cheap place to agree.
                if self._epoch < self._max_epochs and (self._distributed or self._check_at == 0) and self._stop_now():
                    self._save_and_exit()
            runner.call_hook("after_train")
        return runner.model

    def run_epoch(self) -> None:
        """One pass over the dataloader (the rest of it, after a mid-epoch resume).

        A signal may stop it part-way: the epoch's end hooks then do not run and the
        epoch counter does not move.
        """
        runner = self.runner
        runner.call_hook("before_train_epoch")
        runner.model.train()
        batches, start = self._open_pass()
        for batch_idx, data_batch in enumerate(batches, start=start):
            self.run_iter(batch_idx, data_batch)
            if self._iter >= self._check_at and self._stop_now():
                return
        runner.call_hook("after_train_epoch")
        self._epoch += 1

    # One training step between its hooks (the shared step itself: one call fewer per
    # iteration than a method that calls it; a subclass may still override run_iter).
    run_iter = _TrainLoop._train_step


@LOOPS.register_module()
class IterBasedTrainLoop(_TrainLoop):
    """Train for ``max_iters`` iterations, re-iterating the dataloader when it runs out.

    Validation runs every ``val_interval`` iterations from ``val_begin``, and at the end.
    """

    def __init__(
        self,
        runner: Any,
        dataloader: Any,
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
        dynamic_intervals: Sequence[tuple[int, int]] | None = None,
    ) -> None:
        _check_count(max_iters, "max_iters", "the number of iterations to train", "max_iters=1000")
        _check_val_schedule(val_begin, val_interval, "iterations")
        super().__init__(runner, dataloader, val_begin, val_interval, dynamic_intervals)
        self._max_iters = max_iters
        self._max_epochs = 1
        self._batches: Any = None

    def _next_batch(self) -> Any:
        # An exhausted dataloader starts a new pass (a new "epoch" for the sampler seed).
        if self._batches is None:
            self._batches, _ = self._open_pass()  # after a resume: the rest of the pass
        try:
            return next(self._batches)
        except StopIteration:
            self._epoch += 1
            sampler = getattr(self.dataloader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._epoch)
            self._batches, _ = self._open_pass()
            return next(self._batches)

    def run(self) -> torch.nn.Module:
        """Run the remaining iterations and return the model."""
        runner = self.runner
        with self._stop_on_signals():
            runner.call_hook("before_train")
            # One "epoch" stands for the whole run, so epoch hooks fire once.
            runner.call_hook("before_train_epoch")
            runner.model.train()
            while self._iter < self._max_iters and not self.stop_training:
                self.run_iter(self._next_batch())
                if self._iter >= self._check_at and self._iter < self._max_iters and self._stop_now():
                    self._save_and_exit()
                if self._should_validate(self._iter, self._max_iters):
                    runner.val_loop.run()
                    runner.model.train()
            runner.call_hook("after_train_epoch")
            runner.call_hook("after_train")
        return runner.model

    def run_iter(self, data_batch: Any) -> None:
        """One training step between its hooks; ``batch_idx`` is the global iteration."""
        self._train_step(self._iter, data_batch)
