"""`Runner`: builds everything a config describes and runs training, validation or testing."""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
import os
import time
import warnings
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from minirunner.checkpoint import WorkDirLock, WorkDirLockedError
from minirunner.config import Config
from minirunner.dist import (
    broadcast_object,
    get_rank,
    get_world_size,
    init_dist,
    is_distributed,
    is_main_process,
)
from minirunner.hooks import Hook, get_priority
from minirunner.hooks.hook import EVENTS
from minirunner.logging import MessageHub, add_log_file, get_logger, log_to_files_only, set_current_logger
from minirunner.model.wrappers import wrap_distributed
from minirunner.registry import (
    EVALUATOR,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    MODELS,
    RUNNERS,
    VISUALIZERS,
    config_key,
)
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .default_hooks import DEFAULT_HOOKS
from .checkpoint_methods import CheckpointMixin
from .randomness import set_random_seed

# Config keys that from_cfg reads besides the Runner's own arguments.
_EXTRA_CFG_KEYS = ("runner_type", "model_wrapper_cfg", "find_unused_parameters", "sync_bn", "compile", "custom_imports")


@RUNNERS.register_module()
class Runner(CheckpointMixin):
    """Builds a model, data, optimizer, schedulers and hooks from configs, and runs them.

    Every argument may be an object or its config dict; heavy objects (dataloaders, the
    optimizer wrapper, schedulers, loops) are built when :meth:`train`, :meth:`val` or
    :meth:`test` needs them. ``Runner(**cfg)`` and :meth:`from_cfg` take the same keys.

    Example:
        >>> cfg = Config.fromfile('configs/digits_mlp.py')  # doctest: +SKIP
        >>> runner = Runner.from_cfg(cfg)  # doctest: +SKIP
        >>> model = runner.train()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module | dict,
        work_dir: str | None = None,
        train_dataloader: Any = None,
        val_dataloader: Any = None,
        test_dataloader: Any = None,
        train_cfg: dict | None = None,
        val_cfg: dict | None = None,
        test_cfg: dict | None = None,
        auto_scale_lr: dict | None = None,
        optim_wrapper: Any = None,
        param_scheduler: Any = None,
        val_evaluator: Any = None,
        test_evaluator: Any = None,
        default_hooks: dict | None = None,
        custom_hooks: list | None = None,
        data_preprocessor: dict | None = None,
        load_from: str | None = None,
        resume: bool | str = False,
        launcher: str = "none",
        env_cfg: dict | None = None,
        log_processor: dict | None = None,
        log_level: str | int = "INFO",
        visualizer: Any = None,
        default_scope: str = "minirunner",
        randomness: dict | None = None,
        experiment_name: str | None = None,
        cfg: Any = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            known = list(inspect.signature(Runner.__init__).parameters)[1:-1]
            hints = "".join(did_you_mean(k, known) for k in unknown)
            raise ConfigError(
                f"Runner got unknown argument(s) {quoted_list(unknown)}.{hints} Accepted: {quoted_list(known)}"
            )
        self.cfg = cfg if isinstance(cfg, Config) or cfg is None else Config(dict(cfg))
        self._check_groups(train_dataloader, train_cfg, optim_wrapper, "train")
        self._check_groups(val_dataloader, val_cfg, val_evaluator, "val")
        self._check_groups(test_dataloader, test_cfg, test_evaluator, "test")

        self._launcher = launcher
        self._env_cfg = dict(env_cfg or {})
        self._setup_env()
        randomness = dict(randomness or {})
        self._randomness = randomness
        # Rank 0's seed for every rank, whatever each process's config evaluated to.
        self._set_seed(broadcast_object(randomness.get("seed")))

        self._work_dir = os.path.abspath(work_dir or self._default_work_dir())
        self._timestamp = broadcast_object(time.strftime("%Y%m%d_%H%M%S", time.localtime()))
        self._experiment_name = experiment_name or self._timestamp
        self._log_dir = os.path.join(self._work_dir, self._timestamp)
        # The log folder appears with the first line logged (see add_log_file).
        self._logger = self._build_logger(log_level)
        if self.cfg is not None:
            for message in _unused_key_notes(self.cfg, type(self)):
                log_to_files_only(self._logger, logging.WARNING, message)  # from_cfg warned already
        if is_distributed():
            self._logger.info(
                f"distributed: {get_world_size()} processes, backend {torch_dist.get_backend()}; "
                "rank 0 writes the logs, checkpoints and config dump"
            )
        # A plain attribute rather than a property: hooks read it several times per iteration.
        self.message_hub = MessageHub(self._experiment_name)
        self.message_hub.make_current()

        with config_key("visualizer"):
            self.visualizer = self.build_visualizer(visualizer)
        with config_key("log_processor"):
            self.log_processor = self.build_log_processor(log_processor, train_cfg)

        self._default_scope = default_scope
        self._load_from = _checked_checkpoint_path(load_from, "load_from")
        if resume not in (True, False, None, "auto"):
            resume = _checked_checkpoint_path(resume, "resume")
        self._lock = WorkDirLock(self._work_dir)
        self._has_loaded = False  # load_from is applied once, not again by a later val()/test()
        self._resume = resume
        self._auto_scale_lr = auto_scale_lr
        self._train_dataloader = train_dataloader
        self._val_dataloader = val_dataloader
        self._test_dataloader = test_dataloader
        self._train_loop: Any = train_cfg
        self._val_loop: Any = val_cfg
        self._test_loop: Any = test_cfg
        self._val_evaluator = val_evaluator
        self._test_evaluator = test_evaluator
        self.optim_wrapper: Any = optim_wrapper
        self._param_scheduler_cfg = param_scheduler
        self.param_schedulers: Any = None

        if isinstance(model, dict) and data_preprocessor is not None:
            model = dict(model)
            model.setdefault("data_preprocessor", data_preprocessor)
        with config_key("model"):
            built = self.build_model(model)
        self.model = self.wrap_model(built)  # its errors name model_wrapper_cfg, sync_bn

        self._hooks: list[Hook] = []
        self._hook_names: dict[int, str] = {}
        self._hook_table: dict[str, list] = {event: [] for event in EVENTS}
        self.register_hooks(default_hooks, custom_hooks)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_cfg(cls, cfg: Config | dict) -> "Runner":
        """Build a runner (or the registered subclass named by ``runner_type``) from a config.

        Keys that are neither Runner arguments nor known extras (helper variables such as
        ``lr = 0.1``) are ignored; a key that looks like a misspelt known key is warned about.
        """
        cfg = cfg if isinstance(cfg, Config) else Config(dict(cfg))
        runner_cls = cls
        if cfg.get("runner_type"):
            with config_key("runner_type"):
                runner_cls = _runner_class(cfg["runner_type"])
        # Warned here, before building can fail because of the typo; the Runner also writes
        # these lines into its log file.
        for message in _unused_key_notes(cfg, runner_cls):
            warnings.warn(message, stacklevel=2)
        accepted = _accepted_arguments(runner_cls)
        kwargs = {key: copy.deepcopy(cfg[key]) for key in cfg if key in accepted}
        return runner_cls(**kwargs, cfg=cfg)

    @staticmethod
    def _check_groups(loader: Any, loop_cfg: Any, third: Any, mode: str) -> None:
        third_name = "optim_wrapper" if mode == "train" else f"{mode}_evaluator"
        given = {f"{mode}_dataloader": loader, f"{mode}_cfg": loop_cfg, third_name: third}
        present = [k for k, v in given.items() if v is not None]
        if present and len(present) != 3:
            missing = [k for k in given if k not in present]
            raise ConfigError(
                f"{', '.join(present)} given without {', '.join(missing)}: {mode} needs all three "
                f"({', '.join(given)}); set the missing ones or remove the others"
            )

    def _default_work_dir(self) -> str:
        if self.cfg is not None and self.cfg.filename:
            return os.path.join("work_dirs", os.path.splitext(os.path.basename(self.cfg.filename))[0])
        raise ConfigError("work_dir is not set; add work_dir='work_dirs/<name>' to the config", key="work_dir")

    def _setup_env(self) -> None:
        env = self._env_cfg
        if env.get("cudnn_benchmark"):
            torch.backends.cudnn.benchmark = True
        start_method = (env.get("mp_cfg") or {}).get("mp_start_method")
        if start_method is not None:
            import multiprocessing

            multiprocessing.set_start_method(start_method, force=True)
        dist_cfg = dict(env.get("dist_cfg") or {})
        for key in dist_cfg:
            if key not in ("backend", "timeout"):
                warnings.warn(
                    f"env_cfg.dist_cfg.{key} is not used (only backend and timeout are).{did_you_mean(key, ['backend', 'timeout'])}",
                    stacklevel=3,
                )
        # init_dist names the keys itself (launcher, env_cfg.dist_cfg.backend, ...).
        init_dist(self._launcher, backend=dist_cfg.get("backend"), timeout=dist_cfg.get("timeout"))

    def _set_seed(self, seed: int | None) -> None:
        self._seed = set_random_seed(
            seed,
            deterministic=bool(self._randomness.get("deterministic", False)),
            diff_rank_seed=bool(self._randomness.get("diff_rank_seed", False)),
        )

    def _build_logger(self, log_level: str | int) -> logging.Logger:
        logger = get_logger("minirunner", log_level=log_level)
        set_current_logger(logger)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):  # from an earlier runner in this process
                logger.removeHandler(handler)
                handler.close()
        if is_main_process():
            add_log_file(os.path.join(self._log_dir, f"{self._timestamp}.log"), logger, log_level)
        return logger

    # ------------------------------------------------------------------ properties
    @property
    def work_dir(self) -> str:
        """Where checkpoints and the config dump go."""
        return self._work_dir

    @property
    def log_dir(self) -> str:
        """``<work_dir>/<timestamp>``: this run's log file and ``vis_data``."""
        return self._log_dir

    @property
    def timestamp(self) -> str:
        """When the run started, ``YYYYmmdd_HHMMSS``."""
        return self._timestamp

    @property
    def experiment_name(self) -> str:
        """The experiment's name (the timestamp unless set)."""
        return self._experiment_name

    @property
    def seed(self) -> int:
        """The random seed in use."""
        return self._seed

    @property
    def rank(self) -> int:
        """This process's rank."""
        return get_rank()

    @property
    def world_size(self) -> int:
        """The number of processes."""
        return get_world_size()

    @property
    def logger(self) -> logging.Logger:
        """The run's logger."""
        return self._logger

    @property
    def hooks(self) -> list[Hook]:
        """Registered hooks, in calling order."""
        return list(self._hooks)

    @property
    def launcher(self) -> str:
        """'none' or 'pytorch'."""
        return self._launcher

    @property
    def distributed(self) -> bool:
        """True under torchrun."""
        return is_distributed()

    @property
    def train_loop(self) -> Any:
        """The training loop (built on first access)."""
        if isinstance(self._train_loop, dict) or self._train_loop is None:
            self._train_loop = self.build_train_loop(self._train_loop)
        return self._train_loop

    @property
    def val_loop(self) -> Any:
        """The validation loop, or None when no validation is configured."""
        if isinstance(self._val_loop, dict):
            self._val_loop = self.build_val_loop(self._val_loop)
        return self._val_loop

    @property
    def test_loop(self) -> Any:
        """The test loop, or None when no test is configured."""
        if isinstance(self._test_loop, dict):
            self._test_loop = self.build_test_loop(self._test_loop)
        return self._test_loop

    @property
    def train_dataloader(self) -> Any:
        """The training dataloader."""
        return self.train_loop.dataloader

    @property
    def val_dataloader(self) -> Any:
        """The validation dataloader."""
        return self.val_loop.dataloader

    @property
    def test_dataloader(self) -> Any:
        """The test dataloader."""
        return self.test_loop.dataloader

    @property
    def epoch(self) -> int:
        """The 0-based index of the current epoch (epochs done, between epochs)."""
        loop = self._train_loop
        return 0 if loop is None or isinstance(loop, dict) else loop.epoch

    @property
    def iter(self) -> int:
        """The 0-based index of the current iteration (iterations done, between iterations)."""
        loop = self._train_loop
        return 0 if loop is None or isinstance(loop, dict) else loop.iter

    @property
    def max_epochs(self) -> int:
        """The number of training epochs."""
        return self.train_loop.max_epochs

    @property
    def max_iters(self) -> int:
        """The number of training iterations."""
        return self.train_loop.max_iters

    # ------------------------------------------------------------------ builders (override points)
    def build_model(self, model: nn.Module | dict) -> nn.Module:
        """Build the model from MODELS (or take the module given) and move it to the device."""
        if isinstance(model, dict):
            model = MODELS.build(model)
        if not isinstance(model, nn.Module):
            raise ConfigError(f"the model must be an nn.Module or its config, got {type(model).__name__}")
        if torch.cuda.is_available():
            model = model.to(torch.device("cuda", torch.cuda.current_device()))
        return model

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Compile the model if asked, and wrap it for distributed training under torchrun.

        The wrapper follows ``model_wrapper_cfg``, ``find_unused_parameters`` and
        ``sync_bn`` (see :func:`~minirunner.model.wrappers.wrap_distributed`); without
        ``model_wrapper_cfg`` it is the reference's default, ``MiniDistributedDataParallel``
        without buffer broadcasts.
        """
        cfg = self.cfg if self.cfg is not None else {}
        if cfg.get("compile"):
            compile_cfg = cfg["compile"] if isinstance(cfg["compile"], dict) else {}
            model = torch.compile(model, **compile_cfg)
        if not is_distributed():
            return model
        return wrap_distributed(
            model,
            cfg.get("model_wrapper_cfg"),
            find_unused_parameters=cfg.get("find_unused_parameters"),
            sync_bn=cfg.get("sync_bn"),
        )

    def build_dataloader(self, dataloader: Any) -> Any:
        """Build a DataLoader from its config (samplers seeded with the run's seed)."""
        if not isinstance(dataloader, dict):
            return dataloader
        from minirunner.dataset import build_dataloader

        return build_dataloader(
            dataloader, seed=self._seed, diff_rank_seed=bool(self._randomness.get("diff_rank_seed", False))
        )

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
        """Build an Evaluator from a metric config, a list of them, or an evaluator config."""
        if isinstance(evaluator, dict) and evaluator.get("type") in ("Evaluator", None) and "metrics" in evaluator:
            return EVALUATOR.build(evaluator)
        if isinstance(evaluator, (dict, list)):
            return EVALUATOR.build(dict(type="Evaluator", metrics=evaluator))
        return evaluator

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
            dataloader = self.build_dataloader(self._train_dataloader)
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
            dataloader = self.build_dataloader(dataloader)
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

    # ------------------------------------------------------------------ hooks
    def register_hook(self, hook: Hook | dict, priority: int | str | None = None, name: str | None = None) -> None:
        """Add a hook (or its config). Lower priority numbers run first; ties keep registration order."""
        if isinstance(hook, dict):
            hook = dict(hook)
            priority = hook.pop("priority", priority)
            hook = HOOKS.build(hook)
        if not isinstance(hook, Hook):
            raise ConfigError(f"a hook must be a Hook or its config, got {type(hook).__name__}")
        if priority is not None:
            hook.priority = priority
        value = get_priority(hook.priority)
        position = len(self._hooks)
        for index, existing in enumerate(self._hooks):
            if get_priority(existing.priority) > value:
                position = index
                break
        self._hooks.insert(position, hook)
        if name is not None:
            self._hook_names[id(hook)] = name
        self._rebuild_hook_table()

    def _rebuild_hook_table(self) -> None:
        # Resolved once here, so call_hook touches only hooks that implement the event. The
        # lists are refilled in place: the training loops hold the per-iteration ones.
        table = self._hook_table
        for handlers in table.values():
            handlers.clear()
        for hook in self._hooks:
            for event, handler in hook.event_handlers().items():
                table[event].append(handler)

    def iteration_handlers(self, event: str) -> list:
        """What to call, in order, for a per-iteration event such as ``'after_train_iter'``.

        Each item takes the runner and the event's keyword arguments. The training loops
        call them directly: :meth:`call_hook` re-packs its keyword arguments for every hook,
        which costs more than the hooks themselves on a small model. The list stays current
        as hooks are registered. When a subclass overrides :meth:`call_hook`, the one item
        routes through it, so the override still sees every event.
        """
        if type(self).call_hook is not Runner.call_hook:
            return [lambda runner, **kwargs: runner.call_hook(event, **kwargs)]
        return self._hook_table[event]

    def register_hooks(self, default_hooks: dict | None = None, custom_hooks: list | None = None) -> None:
        """Register the default hooks (merged with ``default_hooks`` by name), then the custom ones."""
        merged = copy.deepcopy(DEFAULT_HOOKS)
        for name, cfg in (default_hooks or {}).items():
            if cfg is None:
                merged.pop(name, None)
            elif isinstance(cfg, dict) and name in merged and cfg.get("type", merged[name]["type"]) == merged[name]["type"]:
                merged[name].update(cfg)
            else:
                merged[name] = cfg
        for name, cfg in merged.items():
            with config_key(f"default_hooks.{name}"):
                self.register_hook(cfg, name=name)
        for index, cfg in enumerate(custom_hooks or []):
            with config_key(f"custom_hooks.{index}"):
                self.register_hook(cfg)

    def _hook_state_keys(self) -> list[str]:
        """Where each hook's state goes in a checkpoint: its default-hook name, else its class
        name (``#2``, ``#3`` for repeats), so adding or removing other hooks between the
        interrupted and the resumed run does not move it."""
        keys, seen = [], {}
        for hook in self._hooks:
            name = self._hook_names.get(id(hook))
            if name is None:
                name = type(hook).__name__
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    name = f"{name}#{seen[name]}"
            keys.append(name)
        return keys

    def get_hook(self, name: str) -> Hook | None:
        """The default hook registered under ``name`` (e.g. 'checkpoint'), or None."""
        for hook in self._hooks:
            if self._hook_names.get(id(hook)) == name:
                return hook
        return None

    def call_hook(self, fn_name: str, **kwargs: Any) -> None:
        """Call ``fn_name`` on every hook that implements it, in priority order."""
        for method in self._hook_table.get(fn_name, ()):
            method(self, **kwargs)

    # ------------------------------------------------------------------ running
    def train(self) -> nn.Module:
        """Train, validating as configured; return the trained model.

        Rank 0 holds the work dir's lock (``.minirunner.lock``) until training ends: a
        second ``train()`` in the same work dir raises :class:`WorkDirLockedError` at once.
        """
        self._lock_work_dir()
        try:
            return self._train()
        finally:
            self._lock.release()

    def _lock_work_dir(self) -> None:
        refusal = None
        if is_main_process():
            try:
                self._lock.acquire()
            except WorkDirLockedError as error:
                refusal = str(error)
        # Every rank stops when rank 0 cannot lock (else they would wait for it forever).
        refusal = broadcast_object(refusal)
        if refusal is not None:
            raise WorkDirLockedError(refusal)

    def _dump_config(self, folder: str) -> None:
        """Write the config (rank 0) as ``<folder>/<config file name>``: the work dir for
        training, the run's own log folder for ``val()``/``test()``."""
        if self.cfg is not None and is_main_process() and self.cfg.filename:
            self.cfg.dump(os.path.join(folder, os.path.basename(self.cfg.filename)))

    def _train(self) -> nn.Module:
        checkpoint = self._checkpoint_to_resume()
        # Rank 0 saved the checkpoint: its seed lacks the offset diff_rank_seed adds per rank.
        own_seed = self._seed - (get_rank() if self._randomness.get("diff_rank_seed") else 0)
        if checkpoint is not None and checkpoint["meta"].get("seed") not in (None, own_seed):
            self.logger.warning(f"using the resumed run's seed {checkpoint['meta']['seed']} (this run drew {own_seed})")
            self._set_seed(checkpoint["meta"]["seed"])
        train_loop = self.train_loop
        self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
        self._scale_lr()
        self.param_schedulers = self.build_param_scheduler(self._param_scheduler_cfg)
        _ = self.val_loop  # Built now, so config errors surface before training starts.
        self._dump_config(self._work_dir)
        self.call_hook("before_run")
        if checkpoint is not None:
            self.resume_from(checkpoint)
        elif self._load_from and not self._has_loaded:
            self.load_checkpoint(self._load_from)
        self._has_loaded = True
        self.optim_wrapper.initialize_count_status(self.model, train_loop.iter, train_loop.max_iters)
        # Everything is built now: hooks may drop events they turned out not to need (no
        # iteration schedulers, epoch-only checkpoints), so the loop never calls them.
        self._rebuild_hook_table()
        model = train_loop.run()
        self.call_hook("after_run")
        return model

    def val(self) -> dict:
        """Run the validation loop once and return its metrics."""
        return self._evaluate("val")

    def test(self) -> dict:
        """Run the test loop once and return its metrics."""
        return self._evaluate("test")

    def _evaluate(self, mode: str) -> dict:
        loop = self.val_loop if mode == "val" else self.test_loop
        if loop is None:
            raise RuntimeError(
                f"this runner has no {mode} set up: give {mode}_dataloader, {mode}_cfg and {mode}_evaluator"
            )
        self._dump_config(self._log_dir)
        self.call_hook("before_run")
        if self._load_from and not self._has_loaded:
            self.load_checkpoint(self._load_from)
            self._has_loaded = True
        metrics = loop.run()
        self.call_hook("after_run")
        return metrics

    def _scale_lr(self) -> None:
        cfg = self._auto_scale_lr
        if not cfg or not cfg.get("enable", False):
            return
        if "base_batch_size" not in cfg:
            raise ConfigError("auto_scale_lr needs base_batch_size (the batch size the lr was tuned for)", key="auto_scale_lr")
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
        wrappers = self.optim_wrapper.values() if hasattr(self.optim_wrapper, "values") else [self.optim_wrapper]
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

def _unused_key_notes(cfg: Config, runner_cls: type) -> list[str]:
    """One line for each top-level key that no Runner reads and that looks like a misspelt
    key it does read (``optim_wraper``)."""
    accepted = _accepted_arguments(runner_cls) + list(_EXTRA_CFG_KEYS)
    notes = []
    for key in cfg:
        if key not in accepted and not key.startswith("_"):
            # A strict cutoff: configs are full of helper names (data_root, tta_model) that
            # a loose match would flag; real typos of these long keys score above 0.85.
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.85)
            if close:
                notes.append(f"config key '{key}' is not used by the Runner. Did you mean '{close[0]}'?")
    return notes


def _checked_checkpoint_path(path: Any, key: str) -> str | None:
    """``path`` (``load_from`` or ``resume``) if it names an existing file; else a ConfigError."""
    if path is None or path == "":
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"must be a checkpoint file path, got {path!r}", key=key)
    path = os.fspath(path)
    if "://" in path:
        raise ConfigError(
            f"{path} is a URL; minirunner reads local files only. Download it first (e.g. "
            f"`wget {path}`) and set {key} to the downloaded file",
            key=key,
        )
    if os.path.isdir(path):
        hint = " (resume='auto' takes the newest checkpoint of the work dir)" if key == "resume" else ""
        raise ConfigError(f"{path} is a directory; name a checkpoint file{hint}", key=key)
    if not os.path.isfile(path):
        raise ConfigError(f"checkpoint not found: {path}", key=key)
    return path


def _accepted_arguments(runner_cls: type) -> list[str]:
    """The config keys ``runner_cls.__init__`` takes: its named arguments, plus every Runner
    argument when it forwards ``**kwargs`` (the usual shape of a subclass)."""
    named = [p for p in inspect.signature(Runner.__init__).parameters if p not in ("self", "cfg", "unknown")]
    if runner_cls is Runner:
        return named
    params = inspect.signature(runner_cls.__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    accepted = [name for name, p in params.items() if name not in ("self", "cfg") and p.kind not in variadic]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        accepted += [name for name in named if name not in accepted]
    return accepted


def _runner_class(name: Any) -> type:
    if isinstance(name, type):
        return name
    found = RUNNERS.get(name)
    if found is None:
        raise ConfigError(
            f"'{name}' is not a registered runner.{did_you_mean(str(name), RUNNERS.known_names())} "
            "Register your Runner subclass with @RUNNERS.register_module()"
        )
    return found
