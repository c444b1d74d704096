"""Saving, loading and resuming checkpoints: the Runner's checkpoint methods."""

from __future__ import annotations

import os
import platform
import time
import uuid
from typing import Any, Callable

import torch
from torch import nn

import minirunner
from minirunner import dist
from minirunner.checkpoint import (
    load_checkpoint_file,
    load_latest_checkpoint,
    remove_stale_temporaries,
    save_checkpoint_file,
    write_last_checkpoint,
)
from minirunner.model.wrappers import is_model_wrapper

from .randomness import get_rng_state, set_rng_state

# Scheduler state entries that record progress rather than settings.
_SCHEDULER_PROGRESS = frozenset({"last_step", "best", "num_bad_epochs", "cooldown_counter", "verbose"})


class CheckpointMixin:
    """The Runner's checkpoint methods (the Runner inherits them).

    They use the runner's model, optimizer wrapper, schedulers, message hub, hooks, train
    loop, logger and work dir. A checkpoint holds everything needed to continue a run
    bit for bit: the model, the optimizer wrapper (loss scaler included), the schedulers,
    the loop counters, the data position (sampler epoch, seed, samples used this epoch),
    the random generators, the message hub, the hooks' states, and the gradients of an
    unfinished accumulation window.
    """

    # ------------------------------------------------------------------ choosing what to resume
    def _checkpoint_to_resume(self) -> dict | None:
        """The checkpoint :meth:`train` resumes from, or None.

        ``resume=True`` with ``load_from`` resumes from that file (the reference's rule);
        ``resume=True`` or ``'auto'`` otherwise takes the newest checkpoint of the work dir
        that verifies, reporting and skipping damaged ones; a path resumes from that file.
        """
        resume, load_from = self._resume, self._load_from
        if not resume:
            return None
        if resume is True and load_from:
            path = str(load_from)
        elif resume is True or resume == "auto":
            path = None
            if dist.is_main_process():
                remove_stale_temporaries(self._work_dir)
                found = load_latest_checkpoint(self._work_dir, folders=self._checkpoint_folders())
                if found is not None:
                    path, checkpoint = found
            # Every rank resumes from rank 0's choice (their folders may differ).
            path = dist.broadcast_object(path)
            if path is None:
                initial = f"; load_from {load_from} gives the initial weights" if load_from else ""
                self.logger.info(f"resume: no checkpoint to resume in {self._work_dir}; starting from scratch{initial}")
                return None
            if dist.is_main_process():
                return self._accept_resume(path, checkpoint)
        else:
            path = str(resume)
        return self._accept_resume(path, load_checkpoint_file(path))

    def _checkpoint_folders(self) -> list[str]:
        """The folders this run's checkpoints go to: the work dir, and each checkpoint
        hook's ``<out_dir>/<work dir name>``."""
        folders = [self._work_dir]
        for hook in self._hooks:
            folder_of = getattr(hook, "checkpoint_folder", None)
            if callable(folder_of):
                folders.append(folder_of(self._work_dir))
        return list(dict.fromkeys(folders))

    def _accept_resume(self, path: str, checkpoint: dict) -> dict:
        checkpoint.setdefault("meta", {})
        self._resume_path = path
        # The run id passes from checkpoint to checkpoint, so 'auto' can tell this run's
        # files from those of an earlier run in the same folder.
        self._run_id = checkpoint["meta"].get("run_id") or getattr(self, "_run_id", None)
        if self._load_from and os.path.abspath(str(self._load_from)) != os.path.abspath(path):
            self.logger.info(f"load_from {self._load_from} is not used: resuming from {path} restores the weights")
        return checkpoint

    # ------------------------------------------------------------------ saving
    def save_checkpoint(
        self,
        out_dir: str,
        filename: str,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        meta: dict | None = None,
        by_epoch: bool = True,
        *,
        update_last: bool = True,
        background: bool = False,
        then: Callable[[], None] | None = None,
    ) -> str:
        """Write ``<out_dir>/<filename>`` atomically (rank 0) and point ``last_checkpoint`` at it.

        The checkpoint holds tensors and plain types only: ``meta``, ``state_dict``,
        ``optimizer``, ``param_schedulers``, ``message_hub``, ``rng``, ``loop``,
        ``sampler``, ``hooks``, ``accumulation`` and, inside an accumulation window,
        ``grads``. Every rank must call it (an unfinished window's gradients are averaged
        across ranks). Returns the path.

        Args:
            update_last: point ``last_checkpoint`` at the file; False for side copies such
                as the best checkpoint, which a resume must not pick up.
            background: return once the state is serialised; the fsync, the rename, the
                pointer and ``then`` follow on a helper thread (the next save, the end of
                training and :func:`~minirunner.checkpoint.wait_for_checkpoint_writes`
                wait for them).
            then: called once the file is safely in place (e.g. to delete old files).
        """
        epoch, iteration = (self.epoch + 1, self.iter) if by_epoch else (self.epoch, self.iter + 1)
        # A caller saving between iterations (the best checkpoint, after validation; a
        # signal) passes the counters in meta, as in the reference; the loop state follows.
        epoch, iteration = (meta or {}).get("epoch", epoch), (meta or {}).get("iter", iteration)
        if getattr(self, "_run_id", None) is None:
            self._run_id = uuid.uuid4().hex[:16]  # only rank 0's is ever written
        checkpoint: dict[str, Any] = {
            "meta": {
                "epoch": epoch,
                "iter": iteration,
                "seed": self._seed,
                "run_id": self._run_id,
                "experiment_name": self._experiment_name,
                "time": time.strftime("%Y%m%d_%H%M%S", time.localtime()),
                "minirunner_version": minirunner.__version__,
                "torch_version": str(torch.__version__),  # TorchVersion is not weights_only-safe
                "python_version": platform.python_version(),
                "cfg": self.cfg.pretty_text if self.cfg is not None else "",
                **(meta or {}),
            },
            "state_dict": _unwrap(self.model).state_dict(),
            "message_hub": self.message_hub.state_dict(),
            "rng": get_rng_state(),
            "loop": {"epoch": epoch, "iter": iteration},
            "hooks": {},
        }
        loop = self._train_loop
        if loop is not None and not isinstance(loop, dict):
            checkpoint["loop"].update(max_epochs=loop.max_epochs, max_iters=loop.max_iters)
            if hasattr(loop, "progress_state"):
                checkpoint["sampler"] = loop.progress_state(epoch, iteration)
        built = self.optim_wrapper is not None and not isinstance(self.optim_wrapper, dict)
        if save_optimizer and built:
            checkpoint["optimizer"] = self.optim_wrapper.state_dict()
            wrappers = _wrappers(self.optim_wrapper)
            if wrappers:
                checkpoint["accumulation"] = {
                    "inner_count": [w.inner_count for _, w in wrappers],
                    "accumulative_counts": [w.accumulative_counts for _, w in wrappers],
                }
            # Inside an accumulation window the gradients so far are part of the state.
            if any(_inside_window(w) for _, w in wrappers):
                checkpoint["grads"] = self._accumulated_grads()
        if save_param_scheduler and self.param_schedulers:
            checkpoint["param_schedulers"] = _scheduler_states(self.param_schedulers)
        for key, hook in zip(self._hook_state_keys(), self._hooks):
            state = hook.state_dict()
            if state:
                checkpoint["hooks"][key] = state
        self.call_hook("before_save_checkpoint", checkpoint=checkpoint)
        path = os.path.join(out_dir, filename)
        if dist.is_main_process():
            work_dir = self._work_dir

            def in_place() -> None:
                if update_last:
                    write_last_checkpoint(work_dir, path)
                if then is not None:
                    then()

            save_checkpoint_file(checkpoint, path, background=background, then=in_place)
        if update_last:
            self._last_checkpoint = (epoch, iteration, path)
        return path

    def _accumulated_grads(self) -> dict[str, torch.Tensor]:
        grads = {}
        for name, param in _unwrap(self.model).named_parameters():
            if param.grad is not None:
                grads[name] = param.grad.detach()
        if dist.is_distributed():
            # Each rank holds its own partial sums (no_sync); their mean, restored on every
            # rank, makes the window's final all-reduce give the same mean gradient.
            grads = {name: dist.all_reduce(grad.clone(), op="mean") for name, grad in grads.items()}
        return grads

    # ------------------------------------------------------------------ loading weights only
    def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = False) -> dict:
        """Load the model weights only (non-strict by default) and report what did not match.

        A leading ``module.`` (a DDP checkpoint) is stripped from every key. The
        optimizer, schedulers and counters are not touched: this is ``load_from``
        without ``resume``.
        """
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self._loading_weights_only = True  # tells EMAHook this is not a resume
        try:
            self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        finally:
            self._loading_weights_only = False
        state = checkpoint.get("state_dict", checkpoint)
        state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
        model = _unwrap(self.model)
        mismatched = []
        if not strict:
            # As in MMEngine: a tensor of another shape is skipped, not a crash.
            own = model.state_dict()
            for key in list(state):
                value = state[key]
                if key in own and isinstance(value, torch.Tensor) and value.shape != own[key].shape:
                    mismatched.append(f"{key} (checkpoint {tuple(value.shape)}, model {tuple(own[key].shape)})")
                    del state[key]
        result = model.load_state_dict(state, strict=strict)
        if mismatched:
            self.logger.warning(
                f"load_from: skipped {len(mismatched)} tensor(s) of {filename} whose shape differs from the "
                f"model's (left as initialised): {', '.join(mismatched)}"
            )
        report = f"load_from: loaded the weights of {filename} (weights only: optimizer, schedulers and counters start afresh)"
        if result.missing_keys:
            report += f"; missing keys (left as initialised): {', '.join(result.missing_keys)}"
        if result.unexpected_keys:
            report += f"; unexpected keys (ignored): {', '.join(result.unexpected_keys)}"
        if not result.missing_keys and not result.unexpected_keys and not mismatched:
            report += "; every key matched"
        self.logger.info(report)
        return checkpoint

    # ------------------------------------------------------------------ resuming
    def resume_from(self, checkpoint: dict) -> None:
        """Restore everything a checkpoint holds, so training continues where it stopped.

        Where this run's config differs from the checkpoint's run (max_epochs, batch size,
        schedulers, optimizer settings, accumulation), a warning says which value is used.
        """
        path = getattr(self, "_resume_path", "the checkpoint")
        meta = checkpoint.get("meta", {})
        counters = checkpoint.get("loop") or meta
        epoch, iteration = int(counters.get("epoch", 0)), int(counters.get("iter", 0))
        notes: list[str] = []
        _unwrap(self.model).load_state_dict(checkpoint["state_dict"])
        loop = self.train_loop
        if hasattr(loop, "restore_progress"):
            notes += loop.restore_progress(epoch, iteration, checkpoint.get("sampler"))
        else:
            loop._epoch, loop._iter = epoch, iteration
        notes += _run_length_notes(counters, loop, epoch)
        if "optimizer" in checkpoint:
            before = _optimizer_settings(self.optim_wrapper)
            self.optim_wrapper.load_state_dict(checkpoint["optimizer"])
            notes += _changed("optimizer", before, _optimizer_settings(self.optim_wrapper))
        else:
            notes.append("the checkpoint has no optimizer state: the optimizer starts afresh")
        if self.param_schedulers:
            if "param_schedulers" in checkpoint:
                notes += _load_scheduler_states(self.param_schedulers, checkpoint["param_schedulers"])
            else:
                notes.append("the checkpoint has no scheduler state: the schedules start from their beginning")
        if "message_hub" in checkpoint:
            self.message_hub.load_state_dict(checkpoint["message_hub"])
        hook_states = checkpoint.get("hooks", {})
        for key, hook in zip(self._hook_state_keys(), self._hooks):
            state = hook_states.get(key)
            if state:
                hook.load_state_dict(state)
        notes += self._restore_accumulation(checkpoint)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        if "rng" in checkpoint:  # last: nothing above may draw from the restored generators
            set_rng_state(checkpoint["rng"])
        for note in notes:
            self.logger.warning(f"resume: {note}")
        self.logger.info(f"resumed from {path} at epoch {loop.epoch}, iter {loop.iter}")

    def _restore_accumulation(self, checkpoint: dict) -> list[str]:
        saved = checkpoint.get("accumulation")
        grads = checkpoint.get("grads")
        wrappers = _wrappers(self.optim_wrapper)
        if not saved or not wrappers:
            return []
        notes = []
        counts = [w.accumulative_counts for _, w in wrappers]
        if list(saved["accumulative_counts"]) != counts:
            dropped = "; the gradients of the unfinished window are dropped" if grads else ""
            notes.append(
                f"accumulative_counts {_one_or_list(counts)} from the config (the checkpoint's run used "
                f"{_one_or_list(saved['accumulative_counts'])}){dropped}"
            )
            return notes
        if grads:
            params = dict(_unwrap(self.model).named_parameters())
            unmatched = [name for name, grad in grads.items() if name not in params or params[name].shape != grad.shape]
            for name, grad in grads.items():
                if name not in unmatched:
                    param = params[name]
                    param.grad = grad.to(device=param.device, dtype=param.dtype)
            if unmatched:
                notes.append(f"saved gradients without a matching parameter were dropped: {', '.join(unmatched)}")
        return notes


# ---------------------------------------------------------------------------------- helpers
def _unwrap(model: nn.Module) -> nn.Module:
    if isinstance(model, nn.parallel.DistributedDataParallel) or is_model_wrapper(model):
        return model.module
    return model


def _wrappers(optim_wrapper: Any) -> list[tuple[str, Any]]:
    """The built optimizer wrappers that count accumulation, by name ('' for a single one);
    [] before building or for a wrapper class of its own kind."""
    if optim_wrapper is None or isinstance(optim_wrapper, dict):
        return []
    if hasattr(optim_wrapper, "inner_count"):
        found = [("", optim_wrapper)]
    elif hasattr(optim_wrapper, "__getitem__") and hasattr(optim_wrapper, "__iter__"):
        found = [(name, optim_wrapper[name]) for name in optim_wrapper]
    else:
        return []
    return [(name, w) for name, w in found if hasattr(w, "inner_count") and hasattr(w, "accumulative_counts")]


def _inside_window(wrapper: Any) -> bool:
    count = wrapper.inner_count
    return count % wrapper.accumulative_counts != 0 and count != wrapper.max_counts


def _one_or_list(values: list) -> Any:
    return values[0] if len(values) == 1 else values


def _run_length_notes(counters: dict, loop: Any, epoch: int) -> list[str]:
    notes = []
    by_epoch = hasattr(loop, "run_epoch")
    key, value = ("max_epochs", loop.max_epochs) if by_epoch else ("max_iters", loop.max_iters)
    saved = counters.get(key)
    if saved is not None and saved != value:
        notes.append(f"{key} {value} from the config (the checkpoint's run had {saved})")
    if by_epoch and epoch >= loop.max_epochs:
        notes.append(f"the checkpoint is at epoch {epoch}, max_epochs is {loop.max_epochs}: nothing is left to train")
    return notes


def _optimizer_settings(optim_wrapper: Any) -> dict[str, Any]:
    """Each param group's hyper-parameters: the base value (``initial_*``) where a
    scheduler changes one, else the value."""
    settings = {}
    for name, wrapper in _wrappers(optim_wrapper):
        for index, group in enumerate(getattr(getattr(wrapper, "optimizer", None), "param_groups", [])):
            for key, value in group.items():
                if key == "params" or key.startswith("initial_"):
                    continue
                value = group.get(f"initial_{key}", value)
                if isinstance(value, (bool, int, float, str, tuple, list)) or value is None:
                    settings[f"{name + '.' if name else ''}group {index} {key}"] = value
    return settings


def _changed(what: str, config: dict, checkpoint: dict) -> list[str]:
    return [
        f"{what} {key} {checkpoint[key]!r} from the checkpoint (the config gives {config[key]!r})"
        for key in config
        if key in checkpoint and config[key] != checkpoint[key]
    ]


def _scheduler_states(schedulers: Any) -> Any:
    if isinstance(schedulers, dict):
        return {name: [s.state_dict() for s in group] for name, group in schedulers.items()}
    return [s.state_dict() for s in schedulers]


def _load_scheduler_states(schedulers: Any, states: Any) -> list[str]:
    """Load the schedulers' states; notes on every setting the checkpoint changes."""
    if isinstance(schedulers, dict):
        pairs = [(f"param_scheduler.{name}", group, (states or {}).get(name, [])) for name, group in schedulers.items()]
    else:
        pairs = [("param_scheduler", schedulers, states)]
    notes = []
    for label, group, saved in pairs:
        if len(saved) != len(group):
            notes.append(
                f"{label}: the config has {len(group)} scheduler(s), the checkpoint {len(saved)}; "
                f"the first {min(len(saved), len(group))} continue from the checkpoint, the rest start afresh"
            )
        for index, (scheduler, state) in enumerate(zip(group, saved)):
            fresh = scheduler.state_dict()
            scheduler.load_state_dict(state)
            for key, value in fresh.items():
                if key.startswith("_") or key in _SCHEDULER_PROGRESS or key not in state or state[key] == value:
                    continue
                notes.append(
                    f"{label}[{index}] {type(scheduler).__name__} {key}={state[key]!r} from the checkpoint "
                    f"(the config gives {value!r}); the schedule continues as it was saved"
                )
    return notes
