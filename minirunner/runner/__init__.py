"""The Runner, its loops, the log processor and checkpoint I/O."""

# The checkpoint file layer lives in minirunner.checkpoint; these names stay importable here.
from minirunner.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    find_latest_checkpoint,
    load_checkpoint_file,
    load_latest_checkpoint,
    save_checkpoint_file,
    verify_checkpoint,
    wait_for_checkpoint_writes,
)
from .builders import EvaluatorTypeError, ScaleLrConfigError
from .checkpoint_helpers import (
    RemoteCheckpointError,
    get_state_dict,
    load_checkpoint,
    load_state_dict,
    save_checkpoint,
    weights_to_cpu,
)
from .interruption import TrainingInterrupted
from .log_processor import LogProcessor
from .eval_loops import TestLoop, ValLoop
from .loops import EpochBasedTrainLoop, IterBasedTrainLoop
from .randomness import set_random_seed
from .default_hooks import DEFAULT_HOOKS
from .runner import Runner
from minirunner.model.sync_bn import revert_sync_batchnorm

__all__ = [
    "DEFAULT_HOOKS", "EpochBasedTrainLoop", "IterBasedTrainLoop", "LogProcessor", "Runner", "TestLoop",
    "ValLoop", "TrainingInterrupted", "CheckpointError", "CorruptCheckpointError", "UnsafeCheckpointError",
    "find_latest_checkpoint", "load_checkpoint_file", "load_latest_checkpoint", "save_checkpoint_file",
    "verify_checkpoint", "wait_for_checkpoint_writes", "set_random_seed",
    # MMEngine's public checkpoint helpers (safe loads, atomic saves)
    "get_state_dict", "load_checkpoint", "load_state_dict", "save_checkpoint", "weights_to_cpu",
    "RemoteCheckpointError", "EvaluatorTypeError", "ScaleLrConfigError", "revert_sync_batchnorm",
]
