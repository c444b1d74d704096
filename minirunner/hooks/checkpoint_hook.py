"""`CheckpointHook`: saves checkpoints at intervals, the last one, and the best one."""

from __future__ import annotations

import math
import os
from typing import Any, Callable

from minirunner.checkpoint import delete_checkpoint, read_run_id, remove_stale_temporaries, resolve_stored_name
from minirunner.registry import HOOKS
from minirunner.utils import ConfigError, did_you_mean

from .hook import Hook
from .metric_rule import infer_rule


@HOOKS.register_module()
class CheckpointHook(Hook):
    """Saves ``epoch_N.pth`` or ``iter_N.pth`` every ``interval`` epochs/iterations.

    Args:
        interval: save every this many epochs (or iterations); -1 saves only the last.
        by_epoch: count epochs (True) or iterations.
        save_optimizer: include the optimizer wrapper's state (needed to resume).
        save_param_scheduler: include the schedulers' state (needed to resume).
        out_dir: save into ``<out_dir>/<work dir name>`` instead of the work dir (as in
            MMEngine); after ``before_train`` this attribute holds that folder.
        max_keep_ckpts: keep only this many interval checkpoints (-1 keeps all); older ones
            are deleted after the new one is safely written.
        save_last: also save at the end of training when that is not on an interval.
        save_best: a metric name (or list), or 'auto' for the first metric: keep the
            checkpoint with the best value as ``best_<metric>_<epoch|iter>_<N>.pth``.
        rule: 'greater' or 'less' (one per save_best metric); inferred from the name if None.
        filename_tmpl: the file name pattern; defaults to 'epoch_{}.pth' / 'iter_{}.pth'.
        async_save: with a strategy that writes sharded checkpoints (FSDPStrategy), save with
            ``dcp.async_save``: training goes on while the shards are written (the next
            save, the end of training and SIGTERM wait for it). Such checkpoints are
            directories named like the files without ``.pth`` (``iter_N/``).

    The hook deletes only files it wrote itself: its state (saved in every checkpoint) names
    them relative to the checkpoint folder, and every deletion goes through
    :func:`minirunner.checkpoint.delete_checkpoint`, which ignores names that lead out of the
    folder. A run resumed in another work dir (a copy, or ``--resume OTHER/x.pth``) counts
    only the files of its own folder. A checkpoint saved on SIGTERM/SIGINT (``iter_N.pth``)
    stands in until the next regular checkpoint is in place, then goes.
    """

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = -1,
        by_epoch: bool = True,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        out_dir: str | None = None,
        max_keep_ckpts: int = -1,
        save_last: bool = True,
        save_best: str | list[str] | None = None,
        rule: str | list[str] | None = None,
        filename_tmpl: str | None = None,
        async_save: bool = False,
    ) -> None:
        if not isinstance(interval, int) or (interval < 1 and interval != -1):
            raise ConfigError(f"interval must be a positive int or -1, got {interval!r}", key="interval")
        if not isinstance(max_keep_ckpts, int) or (max_keep_ckpts < 1 and max_keep_ckpts != -1):
            raise ConfigError(f"max_keep_ckpts must be a positive int or -1, got {max_keep_ckpts!r}", key="max_keep_ckpts")
        if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
            raise ConfigError(f"out_dir must be a folder path or None, got {out_dir!r}", key="out_dir")
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self.out_dir = out_dir
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.filename_tmpl = filename_tmpl or ("epoch_{}.pth" if by_epoch else "iter_{}.pth")
        self.save_best = [save_best] if isinstance(save_best, str) else list(save_best or [])
        rules = [rule] * len(self.save_best) if rule is None or isinstance(rule, str) else list(rule)
        if len(rules) != len(self.save_best):
            raise ConfigError(f"give one rule per save_best metric, got {rules} for {self.save_best}", key="rule")
        for value in rules:
            if value is not None and value not in ("greater", "less"):
                raise ConfigError(
                    f"rule must be 'greater' or 'less', got {value!r}.{did_you_mean(str(value), ['greater', 'less'])}",
                    key="rule",
                )
        self.rules = rules
        self.async_save = bool(async_save)
        self._out_dir_root = None if out_dir is None else os.fspath(out_dir)
        # Names relative to the checkpoint folder (never paths: see the class docstring).
        self.kept: list[str] = []  # interval checkpoints still on disk, oldest first
        self.interrupted: list[str] = []  # SIGTERM/SIGINT checkpoints, until the next regular one
        self.best_scores: dict[str, float] = {}
        self.best_paths: dict[str, str] = {}  # metric -> name of its best checkpoint

    def checkpoint_folder(self, work_dir: str) -> str:
        """Where this hook saves for a run in ``work_dir``: the work dir, or
        ``<out_dir>/<work dir name>``."""
        if self._out_dir_root is None:
            return os.path.abspath(work_dir)
        return os.path.abspath(os.path.join(self._out_dir_root, os.path.basename(os.path.normpath(work_dir))))

    def before_train(self, runner: Any) -> None:
        self.out_dir = self.checkpoint_folder(runner.work_dir)
        # Names restored from a checkpoint count only for files of this folder that this run
        # wrote: after a branch (--resume OTHER/x.pth) the other folder's files are not here,
        # and a file of the same name here belongs to someone else. Copies and moves keep
        # their files and the run id inside them. Unsafe names are dropped with a warning.
        run_id = getattr(runner, "_run_id", None)
        self.kept = self._own_files(self.kept, run_id)
        self.interrupted = self._own_files(self.interrupted, run_id)
        self.best_paths = {
            metric: name for metric, name in self.best_paths.items() if self._own_files([name], run_id)
        }
        if runner.rank == 0:
            # Files a killed writer left behind (never renamed into place, so never used).
            remove_stale_temporaries(self.out_dir)

    def _own_files(self, names: list, run_id: str | None) -> list[str]:
        own = []
        for name in names:
            path = resolve_stored_name(self.out_dir, name, "the CheckpointHook state entry")
            if path is None or not os.path.exists(path) or name in own:
                continue
            if run_id is None or read_run_id(path) == run_id:
                own.append(name)
        return own

    # ------------------------------------------------------------------ interval saves
    def after_train_epoch(self, runner: Any) -> None:
        if not self.by_epoch:
            return
        on_interval = self.interval > 0 and self.every_n_epochs(runner, self.interval)
        if on_interval or (self.save_last and self.is_last_train_epoch(runner)):
            self._save(runner, self.filename_tmpl.format(runner.epoch + 1))

    def event_handlers(self) -> dict[str, Callable[..., None]]:
        """Epoch checkpoints need no per-iteration call, iteration checkpoints no per-epoch one."""
        handlers = super().event_handlers()
        handlers.pop("after_train_iter" if self.by_epoch else "after_train_epoch", None)
        return handlers

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        if self.by_epoch:
            return
        on_interval = self.interval > 0 and self.every_n_train_iters(runner, self.interval)
        if on_interval or (self.save_last and self.is_last_train_iter(runner)):
            self._save(runner, self.filename_tmpl.format(runner.iter + 1))

    def save_interrupted(self, runner: Any) -> str:
        """Save ``iter_<N>.pth`` between iterations (the loop calls this on SIGTERM/SIGINT).

        The file is a stand-in: the next regular checkpoint replaces it. Returns the path.
        """
        if self.out_dir is None:
            self.out_dir = self.checkpoint_folder(runner.work_dir)
        filename = _checkpoint_name(runner, f"iter_{runner.iter}.pth")
        if filename not in self.interrupted and filename not in self.kept:
            self.interrupted.append(filename)
        return self._write(runner, filename, [], meta={"epoch": runner.epoch, "iter": runner.iter})

    def _save(self, runner: Any, filename: str) -> str:
        filename = _checkpoint_name(runner, filename)
        # Listed before saving, so the copy of this hook's state inside the new checkpoint
        # already names it and no longer names the files it replaces.
        if filename not in self.kept:
            self.kept.append(filename)
        old = [(name, "superseded preemption checkpoint") for name in self.interrupted]
        self.interrupted = []
        if self.max_keep_ckpts > 0:
            while len(self.kept) > self.max_keep_ckpts:
                old.append((self.kept.pop(0), f"max_keep_ckpts={self.max_keep_ckpts}"))
        return self._write(runner, filename, [(name, why) for name, why in old if name != filename])

    def _write(self, runner: Any, filename: str, old: list[tuple[str, str]], meta: dict | None = None) -> str:
        folder = self.out_dir

        def remove_old() -> None:
            # Runs only once the new file is safely in place (after its fsync and rename).
            for name, reason in old:
                delete_checkpoint(folder, name, reason)

        path = runner.save_checkpoint(
            folder,
            filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            background=self.async_save or not _sharded(runner),
            then=remove_old if old else None,
        )
        runner.logger.info(f"saved checkpoint {path}")
        return path

    # ------------------------------------------------------------------ best checkpoint
    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if not self.save_best or not metrics:
            return
        if self.save_best == ["auto"]:
            self.save_best = [next(iter(metrics))]
        for index, metric in enumerate(self.save_best):
            if metric not in metrics:
                raise ConfigError(
                    f"save_best names '{metric}', which validation does not report; it reports "
                    f"{sorted(metrics)}.{did_you_mean(metric, metrics)}",
                    key="default_hooks.checkpoint.save_best",
                )
            rule = self.rules[index] or infer_rule(metric)
            self.rules[index] = rule
            value = float(metrics[metric])
            best = self.best_scores.get(metric, -math.inf if rule == "greater" else math.inf)
            if not (value > best if rule == "greater" else value < best):
                continue
            self.best_scores[metric] = value
            unit, count = ("epoch", runner.epoch) if self.by_epoch else ("iter", runner.iter)
            filename = _checkpoint_name(runner, f"best_{metric.replace('/', '_')}_{unit}_{count}.pth")
            old = self.best_paths.get(metric)
            folder = self.out_dir or self.checkpoint_folder(runner.work_dir)

            def remove_old(old: str | None = old, folder: str = folder, new: str = filename) -> None:
                if old is not None and old != new:
                    delete_checkpoint(folder, old, f"replaced by the new best {new}")

            path = runner.save_checkpoint(
                folder,
                filename,
                save_optimizer=False,
                save_param_scheduler=False,
                # Saved after the counters moved on: they already count what is done.
                meta={f"best_score/{metric}": value, "epoch": runner.epoch, "iter": runner.iter},
                by_epoch=False,
                update_last=False,
                background=self.async_save or not _sharded(runner),
                then=remove_old,  # the previous best goes only once the new one is in place
            )
            self.best_paths[metric] = filename
            runner.logger.info(f"the best {metric} so far is {value:.4f}; saved {path}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "kept": list(self.kept),
            "interrupted": list(self.interrupted),
            "best_scores": dict(self.best_scores),
            "best_paths": dict(self.best_paths),
        }

    def load_state_dict(self, state: dict) -> None:
        # Untrusted input: names are checked against the folder in before_train, and again
        # by delete_checkpoint before anything is deleted.
        self.kept = _names(state.get("kept"))
        self.interrupted = _names(state.get("interrupted"))
        best_paths = state.get("best_paths")
        self.best_paths = dict(best_paths) if isinstance(best_paths, dict) else {}
        best_scores = state.get("best_scores")
        self.best_scores = {
            metric: float(value)
            for metric, value in (best_scores.items() if isinstance(best_scores, dict) else ())
            if isinstance(value, (int, float))
        }


def _names(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _sharded(runner: Any) -> bool:
    return getattr(getattr(runner, "strategy", None), "sharded_checkpoints", False)


def _checkpoint_name(runner: Any, filename: str) -> str:
    """A sharded checkpoint is a directory: ``iter_3.pth`` becomes ``iter_3``."""
    if _sharded(runner) and filename.endswith(".pth"):
        return filename[: -len(".pth")]
    return filename
