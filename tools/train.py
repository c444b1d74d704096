"""Train a model from a config: ``python tools/train.py configs/digits_mlp.py``."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import warnings
from typing import Any

# Running this file directly puts tools/ first on sys.path; the checkout's package should win
# over nothing at all when minirunner is not installed.
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The CPU torch wheel comes without NumPy and warns about it on import; nothing here needs it,
# and the warning would bury a config error's one-line message.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from minirunner.config import Config, ConfigError, DictAction  # noqa: E402
from minirunner.utils import one_line_error  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a model from a minirunner config.")
    parser.add_argument("config", help="the config file (.py, .json or .yaml)")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    parser.add_argument(
        "--resume", nargs="?", const="auto", default=None, metavar="auto|PATH",
        help="resume from PATH, or with no value (or 'auto') from the newest checkpoint in the work dir",
    )
    parser.add_argument("--load-from", help="load model weights only from this checkpoint")
    parser.add_argument("--amp", action="store_true", help="mixed precision (AmpOptimWrapper)")
    parser.add_argument("--auto-scale-lr", action="store_true", help="scale the lr by the total batch size")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config values, e.g. optim_wrapper.optimizer.lr=0.01")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                        help="'pytorch' when started by torchrun")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--deterministic", action="store_true", help="ask torch for deterministic algorithms")
    parser.add_argument("--dry-run", action="store_true",
                        help="build everything, show the param groups, run 2 train and 1 val iteration, save nothing")
    return parser.parse_args(argv)


def apply_args(cfg: Config, args: argparse.Namespace) -> None:
    """Write the command-line choices into the config.

    As in MMEngine's tools/train.py, ``--cfg-options`` is merged first, so the options below
    see (and check) the final values, e.g. ``--auto-scale-lr`` with
    ``--cfg-options auto_scale_lr.base_batch_size=64``; a dedicated option such as
    ``--work-dir`` wins over ``--cfg-options`` for the same key.
    """
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    name = os.path.splitext(os.path.basename(args.config))[0]
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get("work_dir"):
        cfg.work_dir = os.path.join("work_dirs", name)
    if args.resume is not None:
        cfg.resume = "auto" if args.resume == "auto" else args.resume
    if args.load_from:
        cfg.load_from = args.load_from
    if args.amp:
        optim_wrapper = cfg.get("optim_wrapper")
        if optim_wrapper is None:
            raise ConfigError("--amp needs an optim_wrapper in the config", key="optim_wrapper")
        if optim_wrapper.get("type", "OptimWrapper") in ("OptimWrapper", "AmpOptimWrapper"):
            optim_wrapper.type = "AmpOptimWrapper"
        else:
            raise ConfigError(
                f"--amp switches OptimWrapper to AmpOptimWrapper, but the config uses {optim_wrapper.type}; "
                "set the AMP options in the config instead", key="optim_wrapper.type",
            )
    if args.auto_scale_lr:
        if "base_batch_size" not in (cfg.get("auto_scale_lr") or {}):
            raise ConfigError(
                "--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in the config (the total "
                "batch size the lr was tuned for)", key="auto_scale_lr",
            )
        cfg.auto_scale_lr.enable = True
    randomness = dict(cfg.get("randomness") or {})
    if args.seed is not None:
        randomness["seed"] = args.seed
    if args.deterministic:
        randomness["deterministic"] = True
    if randomness:
        cfg.randomness = randomness
    cfg.launcher = args.launcher


class FirstBatches:
    """The first ``count`` batches of a dataloader (for --dry-run); other attributes pass through."""

    def __init__(self, loader: Any, count: int) -> None:
        self.loader = loader
        self.count = min(count, len(loader))

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index == self.count:
                return
            yield batch

    def __len__(self) -> int:
        return self.count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def dry_run(cfg: Config) -> None:
    """Build everything and run 2 train and 1 val iteration in a scratch work dir that is
    deleted afterwards: the configured work dir is neither created nor written (nor locked)."""
    with tempfile.TemporaryDirectory(prefix="minirunner-dry-run-") as scratch:
        cfg.work_dir = scratch
        _dry_run_in(cfg)


def _dry_run_in(cfg: Config) -> None:
    from minirunner.hooks import Hook
    from minirunner.runner import Runner

    class StopAfterTwo(Hook):
        def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
            if runner.iter + 1 >= 2:
                runner.train_loop.stop_training = True

    if cfg.get("default_hooks") is None:
        cfg.default_hooks = {}
    cfg.default_hooks.checkpoint = None
    if cfg.default_hooks.get("logger") is not None:
        cfg.default_hooks.logger.out_dir = None  # no copy of the logs either
    cfg.resume = False
    # train_cfg stays as configured, so the schedulers are built (and checked) as in the real
    # run; a 2-batch dataloader and a stop flag cut training short instead.
    runner = Runner.from_cfg(cfg)
    loop = runner.train_loop
    loop.dataloader = FirstBatches(loop.dataloader, 2)
    loop.val_begin = 2**62  # validation runs once below, whatever the configured interval
    runner.register_hook(StopAfterTwo(), priority="LOWEST")
    runner.train()
    if runner.val_loop is not None:
        runner.val_loop.dataloader = FirstBatches(runner.val_loop.dataloader, 1)
        runner.val_loop.run()
    ran = "2 train and 1 val iteration" if runner.val_loop is not None else "2 train iterations"
    runner.logger.info(f"dry run finished: {ran} ran; nothing was saved")


def report_one_line(runner: Any, error: BaseException) -> None:
    """One ERROR line on the console (and in the log); the traceback in the log file only."""
    import logging
    import traceback

    from minirunner.logging import log_to_files_only

    log_to_files_only(runner.logger, logging.ERROR, "".join(traceback.format_exception(error)).rstrip())
    logging.raiseExceptions = False  # the log file may sit on the full disk: no "Logging error" dump
    runner.logger.error(str(error))


def main(argv: list[str] | None = None) -> int:
    try:
        # Parsing is inside: a malformed --cfg-options item is a ConfigError from DictAction.
        args = parse_args(argv)
        cfg = Config.fromfile(args.config)
        apply_args(cfg, args)
        from minirunner.logging import install_rich_traceback

        install_rich_traceback()  # a failing run ends with a readable traceback, also in the log
        if args.dry_run:
            dry_run(cfg)
            return 0
        from minirunner.registry import RUNNERS
        from minirunner.runner import Runner

        from minirunner.checkpoint import DiskFullError
        from minirunner.optim.nonfinite import NonFiniteLossError

        runner_cls = RUNNERS.get(cfg["runner_type"]) if cfg.get("runner_type") else Runner
        runner = (runner_cls or Runner).from_cfg(cfg)
        try:
            runner.train()
        except (DiskFullError, NonFiniteLossError) as error:  # errors we diagnose ourselves
            report_one_line(runner, error)
            return 1
    except Exception as error:
        # A bad config or checkpoint gets one line that says what to fix; anything else
        # (a failure while training, writing, ...) keeps its traceback.
        message = one_line_error(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    runner.logger.info(f"done. log: {runner.log_dir}; checkpoints and config: {runner.work_dir}")
    import torch.distributed as torch_dist

    if torch_dist.is_available() and torch_dist.is_initialized():
        # A gloo rank could abort at exit ("terminate called without an active exception", one
        # torchrun run in four here): the DDP wrapper's reference cycles kept the process group
        # alive until the interpreter's last collection, when its threads can no longer take
        # the GIL. Free it while Python is fully alive, and let every rank arrive before any
        # tears its connections down.
        del runner
        gc.collect()
        torch_dist.barrier()
        torch_dist.destroy_process_group()  # a clean exit under torchrun, without NCCL's warning
    return 0


if __name__ == "__main__":
    sys.exit(main())
