"""The Runner, its loops, the log processor and checkpoint I/O."""

from .checkpoint import find_latest_checkpoint, load_checkpoint_file, save_checkpoint_file
from .log_processor import LogProcessor
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
from .randomness import set_random_seed
from .runner import DEFAULT_HOOKS, Runner

__all__ = [
    "DEFAULT_HOOKS", "EpochBasedTrainLoop", "IterBasedTrainLoop", "LogProcessor", "Runner", "TestLoop",
    "ValLoop", "find_latest_checkpoint", "load_checkpoint_file", "save_checkpoint_file", "set_random_seed",
]
