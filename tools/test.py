"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The CPU torch wheel comes without NumPy and warns about it on import; nothing here needs it,
# and the warning would bury a config error's one-line message.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

from minirunner.config import Config, ConfigError, DictAction  # noqa: E402
from minirunner.utils import one_line_error  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint on the config's test set.")
    parser.add_argument("config", help="the config file")
    parser.add_argument("checkpoint", help="the checkpoint to evaluate")
    parser.add_argument("--work-dir", help="where the log goes (default: work_dirs/<config name>)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, metavar="KEY=VALUE",
                        help="override config values")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none")
    try:
        # Parsing is inside: a malformed --cfg-options item is a ConfigError from DictAction.
        args = parser.parse_args(argv)
        cfg = Config.fromfile(args.config)
        name = os.path.splitext(os.path.basename(args.config))[0]
        cfg.work_dir = args.work_dir or cfg.get("work_dir") or os.path.join("work_dirs", name)
        cfg.load_from = args.checkpoint
        cfg.resume = False
        cfg.launcher = args.launcher
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if not os.path.isfile(args.checkpoint):
            raise ConfigError(f"checkpoint not found: {args.checkpoint}")
        from minirunner.runner import Runner

        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    except Exception as error:
        # A bad config or checkpoint gets one line that says what to fix; anything else
        # (a failure while training, writing, ...) keeps its traceback.
        message = one_line_error(error)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    runner.logger.info(f"metrics: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
