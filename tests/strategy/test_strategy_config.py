"""Choosing a strategy from the config (default env: no NumPy needed): DDPStrategy is the default
under torchrun, MMEngine's keys are mapped or refused with one line, FSDPStrategy says what it needs."""

from __future__ import annotations

import importlib.util
import socket

import pytest
import torch.distributed as torch_dist

from minirunner.model import MiniDistributedDataParallel
from minirunner.runner import Runner
from minirunner.strategy import BaseStrategy, DDPStrategy, FSDPStrategy
from minirunner.utils import ConfigError


@pytest.fixture
def torchrun_env(monkeypatch):
    """A one-process torchrun environment; the group is destroyed after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():
        monkeypatch.setenv(name, value)
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def build(tmp_path, **cfg) -> Runner:
    base = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        default_hooks=dict(checkpoint=None),
    )
    base.update(cfg)
    return Runner.from_cfg(base)


def distributed(tmp_path, **cfg) -> Runner:
    return build(tmp_path, launcher="pytorch", env_cfg=dict(dist_cfg=dict(backend="gloo")), **cfg)


def test_one_process_without_torchrun_uses_the_model_as_it_is(tmp_path):
    runner = build(tmp_path)
    assert type(runner.strategy) is BaseStrategy and not runner.strategy.sharded_checkpoints
    assert runner.strategy.unwrap(runner.model) is runner.model


def test_ddp_is_the_default_under_torchrun_and_reads_the_top_level_keys(tmp_path, torchrun_env):
    runner = distributed(tmp_path, find_unused_parameters=True)
    assert type(runner.strategy) is DDPStrategy
    assert type(runner.model) is MiniDistributedDataParallel and runner.model.find_unused_parameters is True


def test_ddp_strategy_config_with_mmengines_model_wrapper_key(tmp_path, torchrun_env):
    runner = distributed(
        tmp_path,
        runner_type="FlexibleRunner",
        strategy=dict(type="DDPStrategy", model_wrapper=dict(type="MMDistributedDataParallel", broadcast_buffers=True)),
    )
    assert type(runner) is Runner
    assert type(runner.model) is MiniDistributedDataParallel and runner.model.broadcast_buffers is True


def test_unknown_strategy_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^strategy.type: 'FSDPStrategi' is not a registered strategy. Did you mean 'FSDPStrategy'"):
        build(tmp_path, strategy=dict(type="FSDPStrategi"))


def test_mmengine_fsdp_keys_are_mapped_or_refused_with_what_to_write(tmp_path):
    assert FSDPStrategy(state_dict_cfg="local").state_dict_type == "sharded"
    full = FSDPStrategy(state_dict_cfg="full")
    assert full.state_dict_type == "full" and not full.sharded_checkpoints and full.shards_parameters
    with pytest.raises(ConfigError, match=r"^strategy.state_dict: must be 'sharded' \(checkpoints are DCP .* or 'full' "):
        build(tmp_path, strategy=dict(type="FSDPStrategy", state_dict="local"))
    with pytest.raises(ConfigError, match=r"^strategy.init_device: must be 'cpu' .* or 'meta' .*, got 'cuda'"):
        build(tmp_path, strategy=dict(type="FSDPStrategy", init_device="cuda"))
    assert FSDPStrategy(skip_init_weights=True).initialises_weights_at_wrap is False
    with pytest.raises(ConfigError, match=r"^strategy.model_wrapper: is not used by FSDPStrategy: .*shard=dict\(blocks="):
        build(tmp_path, strategy=dict(type="FSDPStrategy", model_wrapper=dict(auto_wrap_policy=None)))
    with pytest.raises(ConfigError, match=r"^strategy.env_kwargs: .*set env_cfg at the top level"):
        build(tmp_path, strategy=dict(type="FSDPStrategy", env_kwargs=dict()))
    with pytest.raises(ConfigError, match=r"^strategy.shards: unknown key. Did you mean 'shard'"):
        build(tmp_path, strategy=dict(type="FSDPStrategy", shards=dict()))
    with pytest.raises(ConfigError, match=r"^strategy.mixed_precision.param_dtype: must be a torch dtype name"):
        build(tmp_path, strategy=dict(type="FSDPStrategy", mixed_precision=dict(param_dtype="bfloat61")))


def test_fsdp_without_numpy_names_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpy" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        build(tmp_path, strategy=dict(type="FSDPStrategy"))
    message = str(info.value)
    assert "\n" not in message and message.startswith("strategy: FSDPStrategy needs NumPy")
    assert "pip install -e '.[fsdp]'" in message


def test_fsdp_without_a_process_group_says_how_to_start(tmp_path):
    if importlib.util.find_spec("numpy") is None:
        pytest.skip("the NumPy check comes first; run `make test-fsdp`")
    with pytest.raises(ConfigError, match=r"^strategy: FSDPStrategy needs a process group: start the run with torchrun"):
        build(tmp_path, strategy=dict(type="FSDPStrategy"))
