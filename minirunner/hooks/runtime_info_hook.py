"""`RuntimeInfoHook`: puts the run's counters, learning rates and losses into the message hub."""

from __future__ import annotations

from typing import Any

from minirunner.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class RuntimeInfoHook(Hook):
    """Keeps the message hub up to date: epoch, iter, max counts, lr, losses, grad norm, metrics.

    Losses and the gradient norm stay tensors in the hub; they are turned into numbers only
    when the logger reads them, at its interval.
    """

    priority = "VERY_HIGH"

    def before_run(self, runner: Any) -> None:
        runner.message_hub.update_info_dict(
            {"cfg": runner.cfg.pretty_text if runner.cfg is not None else "", "seed": runner.seed,
             "experiment_name": runner.experiment_name}
        )

    def before_train(self, runner: Any) -> None:
        runner.message_hub.update_info_dict(
            {"epoch": runner.epoch, "iter": runner.iter, "max_epochs": runner.max_epochs,
             "max_iters": runner.max_iters}
        )

    def before_train_epoch(self, runner: Any) -> None:
        runner.message_hub.update_info("epoch", runner.epoch)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        hub = runner.message_hub
        hub.update_info("iter", runner.iter)
        for name, values in runner.optim_wrapper.get_lr().items():
            hub.update_scalar(f"train/{name}", values[0])

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        hub = runner.message_hub
        for key, value in (outputs or {}).items():
            hub.update_scalar(f"train/{key}", value)
        for name, norm in _grad_norms(runner.optim_wrapper):
            hub.update_scalar(f"train/{name}", norm)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        for key, value in (metrics or {}).items():
            runner.message_hub.update_scalar(f"val/{key}", value)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        for key, value in (metrics or {}).items():
            runner.message_hub.update_scalar(f"test/{key}", value)


def _grad_norms(optim_wrapper: Any) -> list[tuple[str, Any]]:
    """The pre-clip gradient norms that stepped this iteration, as ('grad_norm', tensor) pairs."""
    wrappers = optim_wrapper.items() if hasattr(optim_wrapper, "items") else [("", optim_wrapper)]
    found = []
    for name, wrapper in wrappers:
        if getattr(wrapper, "clipper", None) is None or not wrapper.should_update():
            continue
        norm = getattr(wrapper, "grad_norm", None)
        if norm is not None:
            found.append((f"{name}.grad_norm" if name else "grad_norm", norm))
    return found
