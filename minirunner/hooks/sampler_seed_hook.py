"""`DistSamplerSeedHook`: tells the sampler which epoch it is, so each epoch shuffles anew."""

from __future__ import annotations

from typing import Any

from minirunner.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class DistSamplerSeedHook(Hook):
    """Calls ``set_epoch(runner.epoch)`` on the training sampler before every epoch."""

    priority = "NORMAL"

    def before_train_epoch(self, runner: Any) -> None:
        loader = runner.train_dataloader
        for sampler in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(runner.epoch)
                return
