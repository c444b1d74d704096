"""The Runner's ``build_*`` methods (the Runner inherits them): override points that turn
each config section into its object, plus :meth:`BuildersMixin.scale_lr`."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from torch import nn

from minirunner.dist import get_world_size, is_distributed, is_main_process
from minirunner.model.compile import compile_cache_folder, compile_if_configured, compile_options
from minirunner.registry import LOG_PROCESSORS, LOOPS, MODELS, VISUALIZERS, config_key
from minirunner.utils import ConfigError

from minirunner.model.sync_bn import revert_sync_batchnorm

_RUN_SEED: Any = object()  # build_dataloader's default: the runner's seed, or None without a runner


class ScaleLrConfigError(ConfigError, AssertionError):
    """``auto_scale_lr`` lacks ``base_batch_size`` (MMEngine raises an AssertionError)."""


class EvaluatorTypeError(ConfigError, TypeError):
    """``val_evaluator``/``test_evaluator`` is neither a config nor an Evaluator (MMEngine
    raises a TypeError)."""


class _RunnerOrStatic:
    """A method callable on a runner and, like MMEngine's staticmethod, on the class.

    ``runner.build_dataloader(cfg)`` passes the runner (its seed is the default);
    ``Runner.build_dataloader(cfg, seed=0)`` passes None.
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __get__(self, runner: Any, owner: type | None = None) -> Callable[..., Any]:
        return functools.partial(self.func, runner)


class BuildersMixin:
    """What the Runner builds from its configs; each method may be overridden in a subclass."""

    def build_model(self, model: nn.Module | dict) -> nn.Module:
        """Build the model from MODELS (or take the module given) and move it to the device.

        The constructor runs in the strategy's ``build_context()`` (where
        ``FSDPStrategy(init_device='meta')`` keeps each block's shard as soon as it is built).
        """
        if isinstance(model, dict):
            with self.strategy.build_context():
                model = MODELS.build(model)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"the model must be an nn.Module or its config, got {type(model).__name__}")
        device = self.strategy.model_device()
        if device is not None:
            model = model.to(device)
        return model

    def build_strategy(self, strategy: Any) -> Any:
        """Build the run's strategy (see :func:`minirunner.strategy.build_strategy`): the
        config's ``strategy``, else DDP under torchrun (configured by ``model_wrapper_cfg``,
        ``find_unused_parameters`` and ``sync_bn``), else one process."""
        from minirunner.strategy import build_strategy

        cfg = self.cfg if self.cfg is not None else {}
        return build_strategy(
            strategy,
            cfg.get("model_wrapper_cfg"),
            find_unused_parameters=cfg.get("find_unused_parameters"),
            sync_bn=cfg.get("sync_bn"),
        )

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Let the strategy wrap or shard the model, then compile its forward if the config's
        ``compile`` asks (see :func:`~minirunner.model.compile.compile_options`). Under
        FSDPStrategy the strategy compiles each block before sharding it instead.

        Outside a process group, every ``SyncBatchNorm`` is turned back into a plain
        BatchNorm layer (it cannot run there), as in MMEngine. Under torchrun the default
        strategy, DDP, follows ``model_wrapper_cfg``, ``find_unused_parameters`` and
        ``sync_bn`` (see :func:`~minirunner.model.wrappers.wrap_distributed`); without
        ``model_wrapper_cfg`` it is the reference's default, ``MiniDistributedDataParallel``
        without buffer broadcasts. ``strategy=dict(type='FSDPStrategy', ...)`` shards it.
        """
        cfg = self.cfg if self.cfg is not None else {}
        if not is_distributed() and any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
            self.logger.info("not distributed: SyncBatchNorm layers are reverted to BatchNorm layers")
            model = revert_sync_batchnorm(model)
        if self.strategy.compiles_blocks:
            options = compile_options(cfg.get("compile"))
            if options is not None:  # FSDP2: each block compiled before it is sharded
                self.strategy.compile_blocks(options, compile_cache_folder(self._work_dir))
            return self.strategy.wrap(model)
        model = self.strategy.wrap(model)
        # After wrapping, in place: see minirunner.model.compile.
        return compile_if_configured(model, cfg.get("compile"), self._work_dir)

    @_RunnerOrStatic
    def build_dataloader(runner: Any, dataloader: Any, seed: Any = _RUN_SEED, diff_rank_seed: Any = None) -> Any:
        """Build a DataLoader from its config (a DataLoader is returned as is).

        Callable on a runner, ``runner.build_dataloader(cfg)``, where ``seed`` and
        ``diff_rank_seed`` default to the run's, and on the class like MMEngine's static
        method, ``Runner.build_dataloader(cfg, seed=0)``, where they default to None (the
        sampler draws a seed) and False. See :func:`minirunner.dataset.build_dataloader`.
        """
        if not isinstance(dataloader, dict):
            return dataloader
        from minirunner.dataset import build_dataloader

        if seed is _RUN_SEED:
            seed = runner.seed if runner is not None else None
        if diff_rank_seed is None:
            diff_rank_seed = bool(runner._randomness.get("diff_rank_seed", False)) if runner is not None else False
        return build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    def _build_loop_dataloader(self, dataloader: Any) -> Any:
        """:meth:`build_dataloader` as the loops call it: with the run's ``seed`` and
        ``diff_rank_seed`` passed explicitly, as MMEngine's loops do (so an override written as
        MMEngine's static method gets them), unless an override takes no ``seed``."""
        method = self.build_dataloader
        params = inspect.signature(method).parameters.values()
        if not any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return method(dataloader)
        diff_rank_seed = bool(self._randomness.get("diff_rank_seed", False))
        return method(dataloader, seed=self.seed, diff_rank_seed=diff_rank_seed)

    def build_optim_wrapper(self, optim_wrapper: Any) -> Any:
        """Build the optimizer wrapper (or several) for the model."""
        if not isinstance(optim_wrapper, dict):
            return optim_wrapper
        from minirunner.optim import build_optim_wrapper

        with config_key("optim_wrapper"):
            return build_optim_wrapper(self.model, optim_wrapper)

    def build_param_scheduler(self, scheduler: Any) -> Any:
        """Build the schedulers; a missing ``end`` becomes max_epochs (by epoch) or max_iters.

        ``scheduler`` is one config, a list, or (several optimizers) a dict of lists keyed
        like the OptimWrapperDict. Error messages name ``param_scheduler...`` themselves.
        """
        from minirunner.optim import build_param_schedulers

        if scheduler is None:
            return []
        return build_param_schedulers(
            scheduler,
            self.optim_wrapper,
            epoch_length=len(self.train_dataloader),
            max_epochs=self.max_epochs,
            max_iters=self.max_iters,
        )

    def build_evaluator(self, evaluator: Any) -> Any:
        """Build an Evaluator, as MMEngine does: an Evaluator is returned as is; a dict with
        ``metrics`` is built from ``EVALUATOR`` (``type`` defaults to ``'Evaluator'``, so a
        registered subclass may be named); any other dict, a list or a metric object is the
        metrics of a plain Evaluator. An object with ``process`` and ``evaluate`` methods is
        used as it is."""
        from minirunner.evaluator import BaseMetric, Evaluator, build_evaluator

        if isinstance(evaluator, Evaluator):
            return evaluator
        if not isinstance(evaluator, (dict, list, tuple, BaseMetric)):
            if callable(getattr(evaluator, "process", None)) and callable(getattr(evaluator, "evaluate", None)):
                return evaluator  # an evaluator of the user's own, not derived from Evaluator
            raise EvaluatorTypeError(
                f"must be an Evaluator, a metric config such as dict(type='Accuracy'), a list of them, or "
                f"dict(type='Evaluator', metrics=...), got {type(evaluator).__name__}"
            )
        return build_evaluator(evaluator)

    def build_train_loop(self, loop: Any) -> Any:
        """Build the training loop from ``train_cfg``."""
        if loop is None:
            raise RuntimeError(
                "this runner has no training set up: give train_dataloader, train_cfg and optim_wrapper"
            )
        if not isinstance(loop, dict):
            return loop
        loop = dict(loop)
        with config_key("train_dataloader"):
            dataloader = self._build_loop_dataloader(self._train_dataloader)
        if "type" not in loop:
            loop["type"] = "EpochBasedTrainLoop" if loop.pop("by_epoch", True) else "IterBasedTrainLoop"
        with config_key("train_cfg"):
            return LOOPS.build(loop, default_args=dict(runner=self, dataloader=dataloader))

    def build_val_loop(self, loop: Any) -> Any:
        """Build the validation loop from ``val_cfg``."""
        return self._build_eval_loop(loop, "val", "ValLoop", self._val_dataloader, self._val_evaluator)

    def build_test_loop(self, loop: Any) -> Any:
        """Build the test loop from ``test_cfg``."""
        return self._build_eval_loop(loop, "test", "TestLoop", self._test_dataloader, self._test_evaluator)

    def _build_eval_loop(self, loop: Any, mode: str, default_type: str, dataloader: Any, evaluator: Any) -> Any:
        if not isinstance(loop, dict):
            return loop
        loop = dict(loop)
        loop.setdefault("type", default_type)
        with config_key(f"{mode}_dataloader"):
            dataloader = self._build_loop_dataloader(dataloader)
        with config_key(f"{mode}_evaluator"):
            evaluator = self.build_evaluator(evaluator)
        with config_key(f"{mode}_cfg"):
            return LOOPS.build(loop, default_args=dict(runner=self, dataloader=dataloader, evaluator=evaluator))

    def build_log_processor(self, log_processor: dict | None, train_cfg: dict | None) -> Any:
        """Build the log processor; ``by_epoch`` follows ``train_cfg`` unless set."""
        cfg = dict(log_processor or {})
        cfg.setdefault("type", "LogProcessor")
        if "by_epoch" not in cfg and isinstance(train_cfg, dict):
            cfg["by_epoch"] = train_cfg.get("by_epoch", train_cfg.get("type", "EpochBasedTrainLoop") != "IterBasedTrainLoop")
        return LOG_PROCESSORS.build(cfg)

    def build_visualizer(self, visualizer: Any) -> Any:
        """Build the visualizer; only rank 0 gets a folder to write into."""
        if visualizer is not None and not isinstance(visualizer, dict):
            return visualizer
        cfg = dict(visualizer or {})
        cfg.setdefault("type", "Visualizer")
        return VISUALIZERS.build(cfg, default_args=dict(save_dir=self._log_dir if is_main_process() else None))

    # ------------------------------------------------------------------ learning-rate scaling
    def scale_lr(self, optim_wrapper: Any, auto_scale_lr: dict | None = None) -> None:
        """Scale every param group's lr by (world size x batch size per process) / ``base_batch_size``.

        Does nothing unless ``auto_scale_lr`` has ``enable=True``. Call it after building the
        optimizer wrapper (``optim_wrapper``: an OptimWrapper or an OptimWrapperDict) and
        before the parameter schedulers, which record the initial lr.

        Raises:
            ScaleLrConfigError: ``base_batch_size`` is missing (an AssertionError too, as in MMEngine).
            RuntimeError: the schedulers are built already.
        """
        cfg = auto_scale_lr
        if not cfg or not cfg.get("enable", False):
            return None
        if "base_batch_size" not in cfg:
            raise ScaleLrConfigError(
                "auto_scale_lr needs base_batch_size (the batch size the lr was tuned for)", key="auto_scale_lr"
            )
        if _schedulers_built(self.param_schedulers):
            raise RuntimeError(
                "scale_lr must be called before the parameter schedulers are built: they record each "
                "group's initial lr from the optimizer"
            )
        if optim_wrapper is None or isinstance(optim_wrapper, dict):
            raise RuntimeError("scale_lr needs a built optimizer wrapper; call build_optim_wrapper first")
        loader = self.train_dataloader
        per_process = loader.batch_size
        if per_process is None:  # a batch_sampler config sets the size instead
            per_process = getattr(loader.batch_sampler, "batch_size", None)
        if per_process is None:
            raise ConfigError(
                "auto_scale_lr needs the training batch size, but the dataloader has none "
                "(its batch sampler has no batch_size attribute); disable auto_scale_lr",
                key="auto_scale_lr",
            )
        ratio = get_world_size() * per_process / cfg["base_batch_size"]
        wrappers = optim_wrapper.values() if hasattr(optim_wrapper, "values") else [optim_wrapper]
        lrs = []
        for wrapper in wrappers:
            for group in wrapper.param_groups:
                group["lr"] *= ratio
                lrs.append(group["lr"])
        shown = ", ".join(f"{lr:.6g}" for lr in dict.fromkeys(lrs))
        self.logger.info(
            f"auto_scale_lr: lr scaled by {ratio:g} = world size {get_world_size()} x batch size "
            f"{per_process} per process / base_batch_size {cfg['base_batch_size']}; lr is now {shown}"
        )
        return None


def _schedulers_built(schedulers: Any) -> bool:
    if isinstance(schedulers, dict):
        return "type" not in schedulers and any(_schedulers_built(s) for s in schedulers.values())
    if isinstance(schedulers, (list, tuple)):
        return any(_schedulers_built(s) for s in schedulers)
    return schedulers is not None and hasattr(schedulers, "step") and hasattr(schedulers, "state_dict")
