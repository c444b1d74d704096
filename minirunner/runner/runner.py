"""`Runner`: builds everything a config describes and runs training, validation or testing."""

from __future__ import annotations

import copy
import inspect
import logging
import os
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
from minirunner.hooks import Hook
from minirunner.hooks.hook import EVENTS
from minirunner.hooks.runtime_info_hook import declare_iteration_counters
from minirunner.logging import (
    MessageHub, RecordHold, add_log_file, get_logger, send_warnings_to_file, set_current_logger,
)
from minirunner.registry import RUNNERS, config_key
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .builders import BuildersMixin
from .checkpoint_methods import NOT_SEARCHED, CheckpointMixin, _unwrap
from .config_checks import accepted_arguments, checked_checkpoint_path, runner_class, unused_key_notes
from .hook_methods import HooksMixin
from .loops import _TrainLoop
from .randomness import set_random_seed
from .run_names import fresh_log_dir, make_default_scope


# MMEngine's FlexibleRunner (a runner that takes a strategy) is this Runner.
@RUNNERS.register_module(name=["Runner", "FlexibleRunner"])
class Runner(BuildersMixin, HooksMixin, CheckpointMixin):
    """Builds a model, data, optimizer, schedulers and hooks from configs, and runs them.

    Every argument may be an object or its config dict; heavy objects (dataloaders, the
    optimizer wrapper, schedulers, loops) are built when :meth:`train`, :meth:`val` or
    :meth:`test` needs them. ``Runner(**cfg)`` and :meth:`from_cfg` take the same keys.

    The methods live in mixins by concept: :class:`~.builders.BuildersMixin` (``build_*``,
    ``scale_lr``), :class:`~.hook_methods.HooksMixin` (``register_*``, ``call_hook``) and
    :class:`~.checkpoint_methods.CheckpointMixin` (``save_checkpoint``, ``load_checkpoint``,
    ``resume``, ``load_or_resume``).

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
        default_scope: str | None = "minirunner",
        randomness: dict | None = None,
        experiment_name: str | None = None,
        strategy: dict | None = None,
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
        self.strategy = self.build_strategy(strategy)

        self._work_dir = os.path.abspath(work_dir or self._default_work_dir())
        # Rank 0 names the log folder for every rank: its clock, and its view of the work dir.
        self._timestamp, self._log_dir = broadcast_object(fresh_log_dir(self._work_dir) if is_main_process() else None)
        self._experiment_name = experiment_name or self._timestamp
        # The log folder appears with the first line logged (see add_log_file).
        self._logger = self._build_logger(log_level)
        if is_main_process():
            for note in self._setup_notes:
                self._logger.warning(note)
        if is_distributed():
            self._logger.info(
                f"distributed: {get_world_size()} processes, backend {torch_dist.get_backend()}; "
                "rank 0 writes the logs, checkpoints and config dump"
            )
        # A plain attribute rather than a property: hooks read it several times per iteration.
        self.message_hub = MessageHub(self._experiment_name)
        self.message_hub.make_current()

        # As in MMEngine: everything the run builds is looked up in this scope's registries
        # first (a downstream project's child registries), then in their parents.
        self.default_scope = make_default_scope(self._experiment_name, default_scope)
        with config_key("visualizer"):
            self.visualizer = self.build_visualizer(visualizer)
        with config_key("log_processor"):
            self.log_processor = self.build_log_processor(log_processor, train_cfg)

        self._default_scope = default_scope
        self._load_from = checked_checkpoint_path(load_from, "load_from")
        if resume not in (True, False, None, "auto"):
            resume = checked_checkpoint_path(resume, "resume")
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
                runner_cls = runner_class(cfg["runner_type"], cfg.get("default_scope"))
        # A misspelt key would otherwise leave the base config's value in force silently.
        notes = unused_key_notes(cfg, runner_cls, Runner)
        if notes:
            problem = "; ".join(notes)
            problem += " " if problem.endswith("?") else ". "  # after "Did you mean 'x'?"
            raise ConfigError(
                problem + "Fix the name, or, if it is a helper variable, use it elsewhere "
                "in the config (a variable the config uses is not taken for a typo)"
            )
        accepted = accepted_arguments(runner_cls, Runner)
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
        # Warnings here (an unused key, NCCL falling back to gloo) are logged once the logger
        # exists, by rank 0 alone: as Python warnings every rank printed each with a source line.
        self._setup_notes = [
            f"env_cfg.dist_cfg.{key} is not used (only backend and timeout are).{did_you_mean(key, ['backend', 'timeout'])}"
            for key in dist_cfg
            if key not in ("backend", "timeout")
        ]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # init_dist names the keys itself (launcher, env_cfg.dist_cfg.backend, ...).
            init_dist(self._launcher, backend=dist_cfg.get("backend"), timeout=dist_cfg.get("timeout"))
        self._setup_notes += list(dict.fromkeys(str(warning.message) for warning in caught))

    def _set_seed(self, seed: int | None) -> None:
        self._seed = set_random_seed(
            seed,
            deterministic=bool(self._randomness.get("deterministic", False)),
            diff_rank_seed=bool(self._randomness.get("diff_rank_seed", False)),
        )

    def _build_logger(self, log_level: str | int) -> logging.Logger:
        logger = get_logger("minirunner", log_level=log_level)
        # As in MMEngine, the current logger is named after the experiment: a user's
        # MMLogger.get_current_instance() in a hook reaches this run's console and log file.
        set_current_logger(logger, name=self._experiment_name)
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):  # from an earlier runner in this process
                logger.removeHandler(handler)
                handler.close()
        if is_main_process():
            add_log_file(os.path.join(self._log_dir, f"{self._timestamp}.log"), logger, log_level)
        else:
            # Library warnings: rank 0 prints them; the other ranks keep theirs in a file.
            send_warnings_to_file(os.path.join(self._log_dir, f"{self._timestamp}_rank{get_rank()}_warnings.log"))
        return logger

    # ------------------------------------------------------------------ properties
    @property
    def work_dir(self) -> str:
        """Where checkpoints and the config dump go."""
        return self._work_dir

    @property
    def log_dir(self) -> str:
        """``<work_dir>/<timestamp>`` (``_2``, ... if taken): this run's log file and ``vis_data``."""
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
        """The training loop (built on first access), or None when no training is configured
        (as in MMEngine; :meth:`train` then raises)."""
        if isinstance(self._train_loop, dict):
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
        if self._train_loop is None:
            raise RuntimeError(
                "this runner has no training set up: give train_dataloader, train_cfg and optim_wrapper"
            )
        # What the build logs (resume choices, paramwise_options, the scaled lr) is held back
        # until the before_run hooks have printed the environment and config banner.
        hold = RecordHold(self.logger)
        try:
            checkpoint = self._build_for_training()
        except BaseException:
            hold.release()  # nothing is lost when the build fails
            raise
        hold.stop()
        self.call_hook("before_run")
        hold.release()
        self._init_model_weights()
        self._checkpoint_found = checkpoint
        try:
            self.load_or_resume()
        finally:
            self._checkpoint_found = NOT_SEARCHED
        train_loop = self.train_loop
        self.optim_wrapper.initialize_count_status(self.model, train_loop.iter, train_loop.max_iters)
        # Everything is built now: hooks may drop events they turned out not to need (no
        # iteration schedulers, epoch-only checkpoints), so the loop never calls them.
        self._rebuild_hook_table()
        model = train_loop.run()
        self.call_hook("after_run")
        return model

    def _build_for_training(self) -> dict | None:
        """Find the checkpoint to resume and build the loops, the optim wrapper and the
        schedulers (config errors surface here, before anything runs); returns the checkpoint."""
        # Read before anything is built: a resumed run continues with the checkpoint's seed.
        checkpoint = self._checkpoint_to_resume()
        # Rank 0 saved the checkpoint: its seed lacks the offset diff_rank_seed adds per rank.
        own_seed = self._seed - (get_rank() if self._randomness.get("diff_rank_seed") else 0)
        if checkpoint is not None and checkpoint["meta"].get("seed") not in (None, own_seed):
            self.logger.warning(f"using the resumed run's seed {checkpoint['meta']['seed']} (this run drew {own_seed})")
            self._set_seed(checkpoint["meta"]["seed"])
        _ = self.train_loop  # built first: the schedulers need its length
        self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
        self.scale_lr(self.optim_wrapper, self._auto_scale_lr)
        self.param_schedulers = self.build_param_scheduler(self._param_scheduler_cfg)
        _ = self.val_loop  # Built now, so config errors surface before training starts.
        self._dump_config(self._work_dir)
        return checkpoint

    def _init_model_weights(self) -> None:
        """Apply the model's ``init_cfg`` (``BaseModule.init_weights``, once), as MMEngine's
        ``train()`` does before loading or resuming; under torchrun every rank then takes
        rank 0's weights."""
        model = _unwrap(self.model)
        if not hasattr(model, "init_weights") or self.strategy.initialises_weights_at_wrap:
            return
        model.init_weights()
        self.strategy.broadcast_initial_weights(self.model)

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
        self._load_weights_once()
        metrics = loop.run()
        self.call_hook("after_run")
        return metrics


# Runner.iter is its training loop's iter, which is the loop's counter: RuntimeInfoHook reads
# the counter itself on every iteration.
declare_iteration_counters(Runner, _TrainLoop)

