"""Training, validation and test loops: plain ``for`` statements around the hooks."""

from __future__ import annotations

import bisect
from typing import Any, Iterator, Sequence

import torch

from minirunner.registry import LOOPS
from minirunner.utils import ConfigError

from .randomness import get_rng_state, set_rng_state


class BaseLoop:
    """A loop over one dataloader. ``runner`` calls :meth:`run`."""

    def __init__(self, runner: Any, dataloader: Any) -> None:
        self.runner = runner
        self.dataloader = runner.build_dataloader(dataloader) if isinstance(dataloader, dict) else dataloader

    def run(self) -> Any:
        raise NotImplementedError


def skip_batches(dataloader: Any, count: int) -> Iterator[Any]:
    """An iterator over ``dataloader`` that starts after its first ``count`` batches.

    Used to resume in the middle of an epoch. A sampler with ``set_start_index`` (the
    built-in ones) skips the indices without loading them; otherwise the batches are loaded
    and dropped. The global torch generator is left as it was: the uninterrupted run drew
    from it for this pass before the checkpoint was taken, so drawing again would shift
    everything after (dropout, augmentation in the main process).
    """
    state = torch.get_rng_state()
    sampler = getattr(dataloader, "sampler", None)
    batch_size = getattr(dataloader, "batch_size", None)
    if batch_size is not None and hasattr(sampler, "set_start_index"):
        sampler.set_start_index(count * batch_size)
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


def _dynamic_intervals(
    dynamic_intervals: Sequence[tuple[int, int]] | None, start_interval: int, key: str
) -> tuple[list[int], list[int]]:
    """Milestones and intervals: from each milestone on, validate every matching interval."""
    milestones, intervals = [0], [start_interval]
    for item in dynamic_intervals or []:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ConfigError(f"each item must be (milestone, interval), got {item!r}", key=key)
        if item[0] <= milestones[-1]:
            raise ConfigError(f"milestones must increase, got {dynamic_intervals!r}", key=key)
        milestones.append(int(item[0]))
        intervals.append(int(item[1]))
    return milestones, intervals


class _TrainLoop(BaseLoop):
    """What both training loops share: counters, the stop flag and the validation schedule."""

    def __init__(
        self,
        runner: Any,
        dataloader: Any,
        val_begin: int,
        val_interval: int,
        dynamic_intervals: Sequence[tuple[int, int]] | None,
    ) -> None:
        super().__init__(runner, dataloader)
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        self._milestones, self._intervals = _dynamic_intervals(
            dynamic_intervals, val_interval, "train_cfg.dynamic_intervals"
        )

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
        runner = self.runner
        runner.call_hook("before_train_iter", batch_idx=batch_idx, data_batch=data_batch)
        outputs = runner.model.train_step(data_batch, optim_wrapper=runner.optim_wrapper)
        runner.call_hook("after_train_iter", batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)
        self._iter += 1


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
        if not isinstance(max_epochs, int) or max_epochs < 1:
            raise ConfigError(f"max_epochs must be a positive int, got {max_epochs!r}", key="train_cfg.max_epochs")
        super().__init__(runner, dataloader, val_begin, val_interval, dynamic_intervals)
        self._max_epochs = max_epochs
        self._max_iters = max_epochs * len(self.dataloader)

    def run(self) -> torch.nn.Module:
        """Run the remaining epochs and return the model."""
        runner = self.runner
        runner.call_hook("before_train")
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch()
            if self._should_validate(self._epoch, self._max_epochs):
                runner.val_loop.run()
        runner.call_hook("after_train")
        return runner.model

    def run_epoch(self) -> None:
        """One pass over the dataloader (the rest of it, after a mid-epoch resume)."""
        runner = self.runner
        runner.call_hook("before_train_epoch")
        runner.model.train()
        # Non-zero only when resumed from an iteration checkpoint inside this epoch.
        done = self._iter - self._epoch * len(self.dataloader)
        batches = skip_batches(self.dataloader, done) if done > 0 else self.dataloader
        for batch_idx, data_batch in enumerate(batches, start=max(done, 0)):
            self.run_iter(batch_idx, data_batch)
        runner.call_hook("after_train_epoch")
        self._epoch += 1

    def run_iter(self, batch_idx: int, data_batch: Any) -> None:
        """One training step between its hooks."""
        self._train_step(batch_idx, data_batch)


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
        if not isinstance(max_iters, int) or max_iters < 1:
            raise ConfigError(f"max_iters must be a positive int, got {max_iters!r}", key="train_cfg.max_iters")
        super().__init__(runner, dataloader, val_begin, val_interval, dynamic_intervals)
        self._max_iters = max_iters
        self._max_epochs = 1
        self._batches: Any = None

    def _next_batch(self) -> Any:
        # An exhausted dataloader starts a new pass (a new "epoch" for the sampler seed).
        if self._batches is None:
            # After a resume, continue the current pass where the checkpoint left it.
            done = self._iter - self._epoch * _length(self.dataloader, default=0) if self._iter else 0
            self._batches = skip_batches(self.dataloader, done) if done > 0 else iter(self.dataloader)
        try:
            return next(self._batches)
        except StopIteration:
            self._epoch += 1
            sampler = getattr(self.dataloader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self._epoch)
            self._batches = iter(self.dataloader)
            return next(self._batches)

    def run(self) -> torch.nn.Module:
        """Run the remaining iterations and return the model."""
        runner = self.runner
        runner.call_hook("before_train")
        # One "epoch" stands for the whole run, so epoch hooks fire once.
        runner.call_hook("before_train_epoch")
        runner.model.train()
        while self._iter < self._max_iters and not self.stop_training:
            self.run_iter(self._next_batch())
            if self._should_validate(self._iter, self._max_iters):
                runner.val_loop.run()
                runner.model.train()
        runner.call_hook("after_train_epoch")
        runner.call_hook("after_train")
        return runner.model

    def run_iter(self, data_batch: Any) -> None:
        """One training step between its hooks; ``batch_idx`` is the global iteration."""
        self._train_step(self._iter, data_batch)


class _EvalLoop(BaseLoop):
    """Run the model over a dataloader in predict mode and evaluate the predictions."""

    mode = "val"

    def __init__(self, runner: Any, dataloader: Any, evaluator: Any, fp16: bool = False) -> None:
        super().__init__(runner, dataloader)
        self.evaluator = runner.build_evaluator(evaluator) if isinstance(evaluator, (dict, list)) else evaluator
        self.fp16 = fp16

    def run(self) -> dict:
        """Evaluate and return the metrics.

        The random generators are restored afterwards: validating must not change what
        training draws next, or a run resumed at an epoch boundary (which skips that
        validation) would diverge from the uninterrupted one.
        """
        rng_state = get_rng_state()
        try:
            return self._run()
        finally:
            set_rng_state(rng_state)

    def _run(self) -> dict:
        runner = self.runner
        mode = self.mode
        runner.call_hook(f"before_{mode}")
        runner.call_hook(f"before_{mode}_epoch")
        runner.model.eval()
        for batch_idx, data_batch in enumerate(self.dataloader):
            self.run_iter(batch_idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        runner.call_hook(f"after_{mode}_epoch", metrics=metrics)
        runner.call_hook(f"after_{mode}")
        return metrics

    @torch.no_grad()
    def run_iter(self, batch_idx: int, data_batch: Any) -> None:
        """Predict one batch and hand the predictions to the evaluator."""
        runner = self.runner
        runner.call_hook(f"before_{self.mode}_iter", batch_idx=batch_idx, data_batch=data_batch)
        device_type = _model_device_type(runner.model)
        with torch.autocast(device_type=device_type, enabled=self.fp16):
            step = runner.model.val_step if self.mode == "val" else runner.model.test_step
            outputs = step(data_batch)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        runner.call_hook(f"after_{self.mode}_iter", batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)


def _model_device_type(model: torch.nn.Module) -> str:
    for parameter in model.parameters():
        return parameter.device.type
    return "cpu"


@LOOPS.register_module()
class ValLoop(_EvalLoop):
    """The validation loop; ``fp16=True`` runs the forward under autocast."""

    mode = "val"


@LOOPS.register_module()
class TestLoop(_EvalLoop):
    """The test loop; ``fp16=True`` runs the forward under autocast."""

    mode = "test"
