"""`RuntimeInfoHook`: puts the run's counters, learning rates and losses into the message hub."""

from __future__ import annotations

from typing import Any

import torch

from minirunner.logging import MessageHub
from minirunner.optim.wrappers import OptimWrapper
from minirunner.registry import HOOKS

from .hook import Hook


@HOOKS.register_module()
class RuntimeInfoHook(Hook):
    """Keeps the message hub up to date, under the reference's keys, so that code without
    the runner can read the run's state.

    Info (``hub.get_info``): ``cfg`` (the config text), ``seed``, ``experiment_name``,
    ``minirunner_version`` (the reference's ``mmengine_version``) before the run;
    ``epoch``, ``iter``, ``max_epochs``, ``max_iters`` and ``dataset_meta`` (the training
    dataset's ``metainfo``, when it has one) before training; ``epoch`` before each
    training epoch, ``iter`` before each iteration.

    Scalars (``hub.get_scalar``): ``train/lr`` before each iteration (``train/<name>.lr``
    for each optimizer of an ``OptimWrapperDict``, plus ``train/base_lr`` where
    ``get_lr()`` reports one); ``train/<key>`` for each entry of ``train_step``'s output
    (``train/loss``); ``train/grad_norm`` on iterations that stepped with clipping;
    ``val/<metric>`` and ``test/<metric>`` after evaluation (metrics that are not one
    number go to the info instead). ``train/time`` and ``train/data_time`` come from
    ``IterTimerHook``, as in the reference.

    Losses and the gradient norm stay tensors in the hub; they are turned into numbers only
    when the logger reads them, at its interval.
    """

    priority = "VERY_HIGH"

    def before_run(self, runner: Any) -> None:
        """Put the config text, seed, experiment name and version in the hub's info."""
        import minirunner  # fully imported by now; at module level it would be circular

        runner.message_hub.update_info_dict(
            {"cfg": runner.cfg.pretty_text if runner.cfg is not None else "", "seed": runner.seed,
             "experiment_name": runner.experiment_name,
             # The reference's 'mmengine_version' (without its git hash).
             "minirunner_version": minirunner.__version__}
        )

    def __init__(self) -> None:
        self._train_keys: dict[str, str] = {}
        self._clipping: list[tuple[str, Any]] = []
        self._plain_wrapper: Any = None  # an OptimWrapper whose get_lr() is {'lr': [...]}
        # Set in before_train for the Runner's own loop and hub (see _fast_paths).
        self._loop: Any = None
        self._hub: Any = None
        self._info: dict | None = None

    def before_train(self, runner: Any) -> None:
        """Put the (resumed) counters, the run's length and the dataset's metainfo in the hub."""
        runner.message_hub.update_info_dict(
            {"epoch": runner.epoch, "iter": runner.iter, "max_epochs": runner.max_epochs,
             "max_iters": runner.max_iters}
        )
        dataset = getattr(getattr(runner, "train_dataloader", None), "dataset", None)
        if hasattr(dataset, "metainfo"):
            runner.message_hub.update_info("dataset_meta", dataset.metainfo)
        optim_wrapper = runner.optim_wrapper
        wrappers = optim_wrapper.items() if hasattr(optim_wrapper, "items") else [("", optim_wrapper)]
        self._clipping = [
            (f"train/{name}.grad_norm" if name else "train/grad_norm", wrapper)
            for name, wrapper in wrappers
            if getattr(wrapper, "clipper", None) is not None
        ]
        # For the usual single OptimWrapper, get_lr() is {'lr': [lr of each group]}: reading
        # the first group's lr directly gives the same value without building that dict on
        # every iteration. Any other wrapper (a dict of them, base_lr, an overridden get_lr)
        # goes through get_lr().
        plain = type(optim_wrapper).get_lr is OptimWrapper.get_lr
        self._plain_wrapper = optim_wrapper if plain and optim_wrapper.base_param_settings is None else None
        self._loop, self._hub, self._info = _fast_paths(runner)

    def before_train_epoch(self, runner: Any) -> None:
        runner.message_hub.update_info("epoch", runner.epoch)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        hub = runner.message_hub
        loop = self._loop
        iteration = runner.iter if loop is None else loop._iter
        if hub is self._hub:
            self._info["iter"] = iteration  # what update_info("iter", ...) does, one call fewer
        else:
            hub.update_info("iter", iteration)
        wrapper = runner.optim_wrapper
        if wrapper is self._plain_wrapper:
            hub.update_scalar("train/lr", wrapper.optimizer.param_groups[0]["lr"])
            return
        keys = self._train_keys
        for name, values in wrapper.get_lr().items():
            hub.update_scalar(keys.get(name) or self._train_key(name), values[0])

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: dict | None = None) -> None:
        hub = runner.message_hub
        if outputs:
            keys = self._train_keys
            for name, value in outputs.items():
                hub.update_scalar(keys.get(name) or self._train_key(name), value)
        # The pre-clip norm, on iterations that stepped (it stays a tensor until logged).
        for key, wrapper in self._clipping:
            norm = wrapper.grad_norm
            if norm is not None and wrapper.should_update():
                hub.update_scalar(key, norm)

    def _train_key(self, name: str) -> str:
        # 'loss' -> 'train/loss', formatted once per name rather than every iteration.
        key = self._train_keys[name] = f"train/{name}"
        return key

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        """Put the metrics in the hub as ``val/<name>``: numbers as scalars, others as info."""
        _update_metrics(runner.message_hub, "val", metrics)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        """Put the metrics in the hub as ``test/<name>``: numbers as scalars, others as info."""
        _update_metrics(runner.message_hub, "test", metrics)


# The `iter` properties known to read the training loop's counter (`loop._iter`) and nothing
# more: declared by minirunner.runner for its Runner and training loops (the hooks may not
# import the runner layer). A runner or loop whose class has another `iter` is read the public way.
_RUNNER_ITERS: set[Any] = set()
_LOOP_ITERS: set[Any] = set()


def declare_iteration_counters(runner_class: type, loop_class: type) -> None:
    """Declare that ``runner_class.iter`` returns its ``_train_loop``'s ``iter``, and that
    ``loop_class.iter`` returns the loop's ``_iter``, so :class:`RuntimeInfoHook` may read
    ``loop._iter`` directly on every iteration (subclasses that keep those properties too)."""
    _RUNNER_ITERS.add(vars(runner_class)["iter"])
    _LOOP_ITERS.add(vars(loop_class)["iter"])


def _fast_paths(runner: Any) -> tuple[Any, Any, dict | None]:
    """``(loop, hub, info)`` for reading the iteration and storing it on every iteration
    without the calls in between: ``runner.iter`` is two properties deep (Runner, then its
    loop), ``update_info`` one call. Each is None where that shortcut would not be exact (a
    stand-in runner, a loop or hub class that overrides what is skipped); the hook then
    takes the public way."""
    loop = None
    if getattr(type(runner), "iter", None) in _RUNNER_ITERS:
        loop = runner._train_loop
        if getattr(type(loop), "iter", None) not in _LOOP_ITERS:
            loop = None
    hub = runner.message_hub
    if type(hub).update_info is not MessageHub.update_info:
        return loop, None, None
    return loop, hub, hub.runtime_info


def _is_scalar(value: Any) -> bool:
    """A number or a one-element tensor (the reference also counts one-element arrays)."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    if hasattr(value, "size") and hasattr(value, "item") and not callable(value.size):
        return value.size == 1  # a NumPy array or scalar, without importing NumPy
    return isinstance(value, (int, float))


def _update_metrics(hub: Any, mode: str, metrics: dict | None) -> None:
    for key, value in (metrics or {}).items():
        if _is_scalar(value):
            hub.update_scalar(f"{mode}/{key}", value)
        else:
            hub.update_info(f"{mode}/{key}", value)

