"""Saving, loading and resuming checkpoints: the Runner's checkpoint methods."""

from __future__ import annotations

import os
import platform
import time
import uuid
from typing import Any, Callable, Sequence

import torch
from torch import nn

import minirunner
from minirunner import dist
from minirunner.checkpoint import (
    load_checkpoint_file,
    load_latest_checkpoint,
    load_sharded_tensors,
    remove_stale_temporaries,
    save_checkpoint_dir,
    save_checkpoint_file,
    write_last_checkpoint,
)
from minirunner.model.wrappers import is_model_wrapper
from minirunner.optim.nonfinite import check_logged_losses
from minirunner.utils import ConfigError

from .accumulation_state import accumulated_grads, accumulating_wrappers, inside_window, restore_accumulation
from .checkpoint_helpers import DEFAULT_REVISE_KEYS, local_checkpoint_path, revise_state_dict_keys
from .randomness import get_rng_state, set_rng_state
from .resume_notes import (
    _changed,
    _load_scheduler_states,
    _optimizer_settings,
    _run_length_notes,
    _scheduler_states,
    global_batch_notes,
)



# ``_checkpoint_found`` before train() looked for a checkpoint to resume.
NOT_SEARCHED: Any = object()


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

        With a strategy that writes sharded checkpoints (FSDPStrategy) it is a directory,
        ``filename`` without ``.pth``, written by every rank (see
        :func:`minirunner.checkpoint.save_checkpoint_dir`): the model and optimizer through
        DCP, the rest in its ``state.pth``; ``background`` saves with ``dcp.async_save``.
        The ``before_save_checkpoint`` hooks see the model's sharded tensors in
        ``state_dict``; entries they add that hold DTensors (an EMAHook's
        ``ema_state_dict``) are saved through DCP under their own key.

        Args:
            update_last: point ``last_checkpoint`` at the file; False for side copies such
                as the best checkpoint, which a resume must not pick up.
            background: return once the state is serialised; the fsync, the rename, the
                pointer and ``then`` follow on a helper thread (the next save, the end of
                training and :func:`~minirunner.checkpoint.wait_for_checkpoint_writes`
                wait for them).
            then: called once the file is safely in place (e.g. to delete old files).

        Raises:
            NonFiniteLossError: a loss logged since the last check is NaN or infinite
                (``optim_wrapper.nonfinite``, default 'raise'): the weights are broken and
                nothing is written.
        """
        check_logged_losses(self)
        epoch, iteration = (self.epoch + 1, self.iter) if by_epoch else (self.epoch, self.iter + 1)
        # A caller saving between iterations (the best checkpoint, after validation; a
        # signal) passes the counters in meta, as in the reference; the loop state follows.
        epoch, iteration = (meta or {}).get("epoch", epoch), (meta or {}).get("iter", iteration)
        # A sharded checkpoint is a directory (iter_3/ for iter_3.pth): the tensors go
        # through DCP, the rest in its state.pth.
        sharded = self.strategy.sharded_checkpoints
        if sharded and filename.endswith(".pth"):
            filename = filename[: -len(".pth")]
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
            "state_dict": {} if sharded else self.strategy.model_state_dict(self.model),
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
            if not sharded:
                checkpoint["optimizer"] = self.strategy.optim_state_dict(self.model, self.optim_wrapper)
            wrappers = accumulating_wrappers(self.optim_wrapper)
            if wrappers:
                checkpoint["accumulation"] = {
                    "inner_count": [w.inner_count for _, w in wrappers],
                    "accumulative_counts": [w.accumulative_counts for _, w in wrappers],
                }
            # Inside an accumulation window the gradients so far are part of the state.
            if any(inside_window(w) for _, w in wrappers):
                if self.strategy.shards_parameters:
                    self.logger.warning(
                        "a checkpoint of a sharded model inside an accumulation window does not hold the window's "
                        "gradients: "
                        "a resume from it restarts the window; save on window boundaries (a multiple of "
                        "accumulative_counts) to resume exactly"
                    )
                else:
                    checkpoint["grads"] = accumulated_grads(_unwrap(self.model))
        if save_param_scheduler and self.param_schedulers:
            checkpoint["param_schedulers"] = _scheduler_states(self.param_schedulers)
        for key, hook in zip(self._hook_state_keys(), self._hooks):
            state = hook.state_dict()
            if state:
                checkpoint["hooks"][key] = state
        if sharded:
            optimizer = self._sharded_optimizer() if save_optimizer and built else None
            tensors = self.strategy.sharded_state(self.model, optimizer)
            # The hooks see the model's (sharded) tensors as in a single file: an EMAHook
            # puts its averages there and adds its own entry of DTensors.
            checkpoint["state_dict"] = tensors["model"]
        self.call_hook("before_save_checkpoint", checkpoint=checkpoint)
        if sharded:
            tensors["model"], checkpoint["state_dict"] = checkpoint["state_dict"], {}
            tensors.update(_pop_sharded_entries(checkpoint))
        path = os.path.join(out_dir, filename)
        work_dir = self._work_dir

        def in_place() -> None:
            if update_last:
                write_last_checkpoint(work_dir, path)
            if then is not None:
                then()

        if sharded:
            save_checkpoint_dir(
                tensors, checkpoint, path, process_group=self.strategy.checkpoint_group, background=background, then=in_place
            )
        elif dist.is_main_process():
            save_checkpoint_file(checkpoint, path, background=background, then=in_place)
        if update_last:
            self._last_checkpoint = (epoch, iteration, path)
        return path

    def _sharded_optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer whose state a sharded checkpoint holds (one wrapper only)."""
        optimizer = getattr(self.optim_wrapper, "optimizer", None)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError(
                "sharded checkpoints hold one optimizer: use a single optim_wrapper (not a dict of them) "
                "with a sharding strategy",
                key="optim_wrapper",
            )
        return optimizer

    def _load_sharded(self, checkpoint: dict, with_optimizer: bool) -> None:
        """Load the model (and the optimizer) from the directory of a sharded checkpoint;
        every rank calls it. DCP reshards: the checkpoint may come from another world size."""
        optimizer = self._sharded_optimizer() if with_optimizer else None
        state = self.strategy.sharded_state(self.model, optimizer)
        load_sharded_tensors(state, checkpoint["sharded"], process_group=self.strategy.checkpoint_group)
        self.strategy.set_sharded_state(self.model, optimizer, state)

    # ------------------------------------------------------------------ loading weights only
    def load_checkpoint(
        self,
        filename: str,
        map_location: Any = "cpu",
        strict: bool = False,
        revise_keys: Sequence[tuple[str, str]] = DEFAULT_REVISE_KEYS,
    ) -> dict:
        """Load the model weights only (non-strict by default) and report what did not match.

        Every key is renamed with ``revise_keys`` (``(pattern, replacement)`` pairs for
        ``re.sub``; by default a leading ``module.``, from a DDP checkpoint, is removed).
        With ``strict=False`` a tensor whose shape differs from the model's is skipped. The
        optimizer, schedulers and counters are not touched: this is ``load_from`` without
        ``resume``. ``filename`` must be a local file (download a URL first). Returns the
        checkpoint.
        """
        filename = local_checkpoint_path(filename)
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        self._loading_weights_only = True  # tells EMAHook this is not a resume
        try:
            self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        finally:
            self._loading_weights_only = False
        if "sharded" in checkpoint:
            self._load_sharded(checkpoint, with_optimizer=False)
            self.logger.info(f"load_from: loaded the weights of the sharded checkpoint {filename} (weights only)")
            self._has_loaded = True
            return checkpoint
        state = revise_state_dict_keys(checkpoint.get("state_dict", checkpoint), revise_keys)
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
        result = self.strategy.load_model_state_dict(model, state, strict)
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
        self._has_loaded = True
        return checkpoint

    def _load_weights_once(self) -> None:
        """Load ``load_from``'s weights unless something was loaded already (val/test)."""
        if self._load_from and not self._has_loaded:
            self.load_checkpoint(self._load_from)
        self._has_loaded = True

    def load_or_resume(self) -> None:
        """Resume or load weights as the config says, once per runner (:meth:`train` calls it
        after the ``before_run`` hooks).

        ``resume=True`` resumes from ``load_from`` when it is set, else from the newest
        checkpoint of the work dir (``resume='auto'`` too; a path resumes from that file);
        without ``resume``, ``load_from`` loads the weights only. Nothing to resume from
        (or no training set up) falls back to ``load_from``'s weights.
        """
        built = self.optim_wrapper is not None and not isinstance(self.optim_wrapper, dict)
        if built and self._train_loop is not None:
            # Before the first iteration, not at the first checkpoint.
            self.strategy.check_optim_wrapper(self.optim_wrapper)
        checkpoint = getattr(self, "_checkpoint_found", NOT_SEARCHED)
        if checkpoint is NOT_SEARCHED:
            checkpoint = None
            # Without training set up there is nothing to resume: load_from's weights only.
            if self._resume and not self._has_loaded and self._train_loop is not None:
                self._prepare_resume()
                checkpoint = self._checkpoint_to_resume()
        if checkpoint is not None:
            self.resume_from(checkpoint)
            self._has_loaded = True
        else:
            self._load_weights_once()

    def resume(
        self,
        filename: str,
        resume_optimizer: bool = True,
        resume_param_scheduler: bool = True,
        map_location: Any = "default",
    ) -> None:
        """Resume training from checkpoint ``filename``: weights, counters, optimizer,
        schedulers, message hub, hook states, random generators and data position.

        Builds the training loop, the optimizer wrapper and the schedulers first if needed.
        ``map_location='default'`` loads on the CPU (each tensor then moves to where its
        parameter lives). ``filename`` must be a local file (download a URL first).

        Args:
            resume_optimizer: restore the optimizer's state (else it starts afresh).
            resume_param_scheduler: restore the schedulers' states (else they start from
                their beginning).
        """
        filename = local_checkpoint_path(filename)
        checkpoint = load_checkpoint_file(filename, map_location="cpu" if map_location == "default" else map_location)
        self._prepare_resume()
        self.resume_from(
            self._accept_resume(filename, checkpoint),
            resume_optimizer=resume_optimizer,
            resume_param_scheduler=resume_param_scheduler,
        )
        self._has_loaded = True

    def _prepare_resume(self) -> None:
        """Build what a resume restores, when called outside :meth:`train`."""
        if self.train_loop is None:
            raise RuntimeError("resume needs training set up: give train_dataloader, train_cfg and optim_wrapper")
        self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
        if self.param_schedulers is None:
            self.param_schedulers = self.build_param_scheduler(self._param_scheduler_cfg)

    # ------------------------------------------------------------------ resuming
    def resume_from(
        self, checkpoint: dict, resume_optimizer: bool = True, resume_param_scheduler: bool = True
    ) -> None:
        """Restore everything a checkpoint holds, so training continues where it stopped.

        Where this run's config differs from the checkpoint's run (max_epochs, batch size,
        schedulers, optimizer settings, accumulation), a warning says which value is used.
        ``resume_optimizer=False`` / ``resume_param_scheduler=False`` leave the optimizer /
        schedulers as built (and the gradients of an unfinished accumulation window out).
        """
        path = getattr(self, "_resume_path", "the checkpoint")
        meta = checkpoint.get("meta", {})
        counters = checkpoint.get("loop") or meta
        epoch, iteration = int(counters.get("epoch", 0)), int(counters.get("iter", 0))
        notes: list[str] = []
        if "sharded" in checkpoint:
            self._load_sharded(checkpoint, with_optimizer=resume_optimizer)
        else:
            self.strategy.load_model_state_dict(_unwrap(self.model), checkpoint["state_dict"], strict=True)
        loop = self.train_loop
        if hasattr(loop, "restore_progress"):
            notes += loop.restore_progress(epoch, iteration, checkpoint.get("sampler"))
            notes += global_batch_notes(checkpoint.get("sampler"), loop)
        else:
            loop._epoch, loop._iter = epoch, iteration
        notes += _run_length_notes(counters, loop, epoch)
        if not resume_optimizer:
            notes.append("resume_optimizer=False: the optimizer starts afresh")
        elif "sharded" in checkpoint:
            pass  # loaded with the model, above
        elif "optimizer" in checkpoint:
            before = _optimizer_settings(self.optim_wrapper)
            self.strategy.load_optim_state_dict(self.model, self.optim_wrapper, checkpoint["optimizer"])
            notes += _changed("optimizer", before, _optimizer_settings(self.optim_wrapper))
        else:
            notes.append("the checkpoint has no optimizer state: the optimizer starts afresh")
        if self.param_schedulers and not resume_param_scheduler:
            notes.append("resume_param_scheduler=False: the schedules start from their beginning")
        elif self.param_schedulers:
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
        if resume_optimizer:
            notes += restore_accumulation(_unwrap(self.model), self.optim_wrapper, checkpoint)
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        if "rng" in checkpoint:  # last: nothing above may draw from the restored generators
            set_rng_state(checkpoint["rng"])
        for note in notes:
            self.logger.warning(f"resume: {note}")
        self.logger.info(f"resumed from {path} at epoch {loop.epoch}, iter {loop.iter}")


# ---------------------------------------------------------------------------------- helpers
def _unwrap(model: nn.Module) -> nn.Module:
    if isinstance(model, nn.parallel.DistributedDataParallel) or is_model_wrapper(model):
        return model.module
    return model


def _pop_sharded_entries(checkpoint: dict) -> dict[str, Any]:
    """Remove and return the entries of ``checkpoint`` (dicts) that hold DTensors, which only
    DCP can save: they go into a sharded checkpoint's DCP state under their own key."""
    from torch.distributed.tensor import DTensor

    keys = [
        key for key, value in checkpoint.items()
        if isinstance(value, dict) and any(isinstance(item, DTensor) for item in value.values())
    ]
    return {key: checkpoint.pop(key) for key in keys}
