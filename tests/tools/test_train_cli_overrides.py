"""tools/train.py applies --cfg-options before its own options check anything (issue 21, item 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigError

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("minirunner_tool_train_overrides", REPO / "tools" / "train.py")
train_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_tool)


def _cfg(argv: list[str]) -> Config:
    args = train_tool.parse_args([str(REPO / "configs" / "digits_mlp.py"), *argv])
    cfg = Config.fromfile(args.config)
    train_tool.apply_args(cfg, args)
    return cfg


def test_auto_scale_lr_sees_a_base_batch_size_given_by_cfg_options():
    cfg = _cfg(["--auto-scale-lr", "--cfg-options", "auto_scale_lr.base_batch_size=64"])
    assert cfg.auto_scale_lr.base_batch_size == 64 and cfg.auto_scale_lr.enable is True


def test_auto_scale_lr_without_any_base_batch_size_is_still_a_config_error():
    cfg = Config.fromfile(str(REPO / "configs" / "digits_mlp.py"))
    if "auto_scale_lr" in cfg:
        pytest.skip("the shipped config sets auto_scale_lr itself")
    with pytest.raises(ConfigError, match="base_batch_size"):
        _cfg(["--auto-scale-lr"])


def test_amp_sees_the_optim_wrapper_type_given_by_cfg_options():
    with pytest.raises(ConfigError, match="optim_wrapper.type"):
        _cfg(["--amp", "--cfg-options", "optim_wrapper.type=OptimWrapperDict"])


def test_a_dedicated_option_wins_over_cfg_options_for_the_same_key(tmp_path):
    cfg = _cfg(["--work-dir", str(tmp_path / "flag"), "--seed", "7",
                "--cfg-options", f"work_dir={tmp_path / 'option'}", "randomness.seed=3"])
    assert cfg.work_dir == str(tmp_path / "flag") and cfg.randomness.seed == 7
