"""Saving, loading and resuming checkpoints: the Runner's checkpoint methods."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import torch
from torch import nn

import minirunner
from minirunner.dist import is_main_process

from .checkpoint import find_latest_checkpoint, load_checkpoint_file, save_checkpoint_file, write_last_checkpoint
from .randomness import get_rng_state, set_rng_state


class CheckpointMixin:
    """The Runner's checkpoint methods (the Runner inherits them).

    They use the runner's model, optimizer wrapper, schedulers, message hub, hooks, train
    loop, logger and work dir.
    """

    def _checkpoint_to_resume(self) -> dict | None:
        if not self._resume:
            return None
        path = self._load_from if self._resume is True and self._load_from else self._resume
        if path in (True, "auto"):
            path = find_latest_checkpoint(self._work_dir)
            if path is None:
                self.logger.info(f"resume: no checkpoint in {self._work_dir}; starting from scratch")
                return None
        checkpoint = load_checkpoint_file(str(path))
        checkpoint.setdefault("meta", {})
        self._resume_path = str(path)
        return checkpoint

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
    ) -> str:
        """Write ``<out_dir>/<filename>`` atomically (rank 0) and point ``last_checkpoint`` at it.

        The checkpoint holds tensors and plain types only: ``meta``, ``state_dict``,
        ``optimizer``, ``param_schedulers``, ``message_hub``, ``rng``, ``loop`` and ``hooks``.
        ``update_last=False`` leaves ``last_checkpoint`` alone (for side copies such as the
        best checkpoint, which ``resume='auto'`` must not pick up).
        """
        epoch, iteration = (self.epoch + 1, self.iter) if by_epoch else (self.epoch, self.iter + 1)
        # A caller saving between iterations (the best checkpoint, after validation) passes
        # the counters in meta, as in the reference; the loop state follows them.
        epoch, iteration = (meta or {}).get("epoch", epoch), (meta or {}).get("iter", iteration)
        checkpoint: dict[str, Any] = {
            "meta": {
                "epoch": epoch,
                "iter": iteration,
                "seed": self._seed,
                "experiment_name": self._experiment_name,
                "time": time.strftime("%Y%m%d_%H%M%S", time.localtime()),
                "minirunner_version": minirunner.__version__,
                "torch_version": str(torch.__version__),  # TorchVersion is not weights_only-safe
                "python_version": platform.python_version(),
                "cfg": self.cfg.pretty_text if self.cfg is not None else "",
                **(meta or {}),
            },
            "state_dict": _unwrap(self.model).state_dict(),
            "message_hub": self._message_hub.state_dict(),
            "rng": get_rng_state(),
            "loop": {"epoch": epoch, "iter": iteration},
            "hooks": {},
        }
        if save_optimizer and self.optim_wrapper is not None and not isinstance(self.optim_wrapper, dict):
            checkpoint["optimizer"] = self.optim_wrapper.state_dict()
        if save_param_scheduler and self.param_schedulers:
            checkpoint["param_schedulers"] = _scheduler_states(self.param_schedulers)
        for key, hook in zip(self._hook_state_keys(), self._hooks):
            state = hook.state_dict()
            if state:
                checkpoint["hooks"][key] = state
        self.call_hook("before_save_checkpoint", checkpoint=checkpoint)
        path = os.path.join(out_dir, filename)
        if is_main_process():
            save_checkpoint_file(checkpoint, path)
            if update_last:
                write_last_checkpoint(self._work_dir, path)
        return path

    def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = False) -> dict:
        """Load the model weights only (non-strict by default) and report what did not match."""
        checkpoint = load_checkpoint_file(filename, map_location=map_location)
        state = checkpoint.get("state_dict", checkpoint)
        state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
        result = _unwrap(self.model).load_state_dict(state, strict=strict)
        report = f"loaded weights from {filename}"
        if result.missing_keys:
            report += f"; missing keys: {', '.join(result.missing_keys)}"
        if result.unexpected_keys:
            report += f"; unexpected keys: {', '.join(result.unexpected_keys)}"
        self.logger.info(report)
        return checkpoint

    def resume_from(self, checkpoint: dict) -> None:
        """Restore everything a checkpoint holds, so training continues where it stopped."""
        path = getattr(self, "_resume_path", "the checkpoint")
        _unwrap(self.model).load_state_dict(checkpoint["state_dict"])
        loop = checkpoint.get("loop", checkpoint["meta"])
        self.train_loop._epoch = int(loop["epoch"])
        self.train_loop._iter = int(loop["iter"])
        if "optimizer" in checkpoint:
            self.optim_wrapper.load_state_dict(checkpoint["optimizer"])
        if "param_schedulers" in checkpoint and self.param_schedulers:
            _load_scheduler_states(self.param_schedulers, checkpoint["param_schedulers"])
        if "message_hub" in checkpoint:
            self._message_hub.load_state_dict(checkpoint["message_hub"])
        hook_states = checkpoint.get("hooks", {})
        for key, hook in zip(self._hook_state_keys(), self._hooks):
            state = hook_states.get(key)
            if state:
                hook.load_state_dict(state)
        if "rng" in checkpoint:
            set_rng_state(checkpoint["rng"])
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        self.logger.info(f"resumed from {path} at epoch {self.train_loop.epoch}, iter {self.train_loop.iter}")



def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _scheduler_states(schedulers: Any) -> Any:
    if isinstance(schedulers, dict):
        return {name: [s.state_dict() for s in group] for name, group in schedulers.items()}
    return [s.state_dict() for s in schedulers]


def _load_scheduler_states(schedulers: Any, states: Any) -> None:
    if isinstance(schedulers, dict):
        for name, group in schedulers.items():
            for scheduler, state in zip(group, states[name]):
                scheduler.load_state_dict(state)
    else:
        for scheduler, state in zip(schedulers, states):
            scheduler.load_state_dict(state)


