"""one_line_error: which errors a command-line tool reports in one line (exit status 2)."""

from __future__ import annotations

from minirunner.checkpoint import CorruptCheckpointError, UnsafeCheckpointError
from minirunner.utils import ConfigError, one_line_error


def test_config_and_checkpoint_errors_get_one_line():
    assert one_line_error(ConfigError("must be positive", key="train_cfg.max_epochs")).startswith("config error: ")
    assert one_line_error(CorruptCheckpointError("epoch_3.pth: CRC mismatch")) == (
        "checkpoint error: epoch_3.pth: CRC mismatch"
    )
    assert one_line_error(UnsafeCheckpointError("needs unpickling")).startswith("checkpoint error: ")


def test_other_errors_keep_their_traceback():
    assert one_line_error(RuntimeError("CUDA out of memory")) is None
    assert one_line_error(KeyError("loss")) is None
