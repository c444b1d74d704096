"""How the Runner wraps the model under launcher='pytorch' (a one-process gloo group, in process).

torchrun's environment is set by hand (RANK=0, WORLD_SIZE=1, ...), so the Runner joins a real
process group of one and builds a real DistributedDataParallel around the model.
"""

from __future__ import annotations

import logging
import socket

import pytest
import torch
import torch.distributed as torch_dist
from torch import nn

from minirunner.model import MiniDistributedDataParallel
from minirunner.runner import Runner
from minirunner.utils import ConfigError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def torchrun_env(monkeypatch):
    """The environment torchrun gives a job of one process; the group is destroyed after."""
    for name, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    yield
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def _runner(tmp_path, **cfg) -> Runner:
    base = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        launcher="pytorch",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        default_hooks=dict(checkpoint=None),
    )
    base.update(cfg)
    return Runner.from_cfg(base)


def test_default_wrapper_is_the_references(tmp_path, torchrun_env, recwarn):
    runner = _runner(tmp_path)
    # Newer torch deprecates broadcast_buffers; the default must not trigger the warning.
    assert not [w for w in recwarn if "broadcast_buffers" in str(w.message)]
    assert runner.distributed and runner.world_size == 1
    model = runner.model
    assert type(model) is MiniDistributedDataParallel
    # The reference's defaults: no buffer broadcast, no search for unused parameters.
    assert model.broadcast_buffers is False
    assert model.find_unused_parameters is False
    assert model.device_ids is None  # CPU: DDP gets no device


def test_top_level_find_unused_parameters(tmp_path, torchrun_env):
    model = _runner(tmp_path, find_unused_parameters=True).model
    assert model.find_unused_parameters is True and model.broadcast_buffers is False


def test_model_wrapper_cfg_arguments_reach_ddp(tmp_path, torchrun_env):
    model = _runner(
        tmp_path,
        model_wrapper_cfg=dict(type="MMDistributedDataParallel", broadcast_buffers=True, find_unused_parameters=True),
    ).model
    assert type(model) is MiniDistributedDataParallel
    assert model.broadcast_buffers is True and model.find_unused_parameters is True


def test_model_wrapper_cfg_without_type_uses_the_default_wrapper(tmp_path, torchrun_env):
    model = _runner(tmp_path, model_wrapper_cfg=dict(broadcast_buffers=True)).model
    assert type(model) is MiniDistributedDataParallel and model.broadcast_buffers is True


def test_unknown_wrapper_type_names_the_key(tmp_path, torchrun_env):
    with pytest.raises(ConfigError) as info:
        _runner(tmp_path, model_wrapper_cfg=dict(type="MiniDistributedDataParalel"))
    message = str(info.value)
    assert message.startswith("model_wrapper_cfg.type: 'MiniDistributedDataParalel' is not a registered")
    assert "Did you mean 'MiniDistributedDataParallel'" in message


def test_bad_wrapper_argument_names_the_key(tmp_path, torchrun_env):
    with pytest.raises(ConfigError, match=r"^model_wrapper_cfg.*find_unused_parameter"):
        _runner(tmp_path, model_wrapper_cfg=dict(find_unused_parameter=True))


def test_sync_bn_on_cpu_keeps_batchnorm_with_a_warning(tmp_path, torchrun_env, caplog):
    model = dict(type="CNNClassifier", in_channels=1, num_classes=3, channels=(4,))
    with caplog.at_level(logging.WARNING, logger="minirunner"):
        runner = _runner(tmp_path, model=model, sync_bn=True)
    layers = list(runner.model.module.modules())
    assert any(type(m) is nn.BatchNorm2d for m in layers)
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in layers)
    assert "sync_bn=True needs a GPU" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sync_bn_on_cuda_converts_batchnorm(tmp_path, torchrun_env):
    model = dict(type="CNNClassifier", in_channels=1, num_classes=3, channels=(4,))
    runner = _runner(tmp_path, model=model, sync_bn="torch", env_cfg=dict(dist_cfg=dict(backend="nccl")))
    layers = list(runner.model.module.modules())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in layers)
    assert not any(type(m) is nn.BatchNorm2d for m in layers)
    assert runner.model.device_ids == [torch.cuda.current_device()]


def test_sync_bn_bad_value(tmp_path, torchrun_env):
    with pytest.raises(ConfigError, match=r"^sync_bn: must be True .* got 'mmcv'"):
        _runner(tmp_path, sync_bn="mmcv")


def test_a_model_without_trainable_parameters_is_not_wrapped(tmp_path, torchrun_env):
    from minirunner.model import MLPClassifier

    frozen = MLPClassifier(in_features=4, hidden_dims=(8,), num_classes=2)
    frozen.requires_grad_(False)
    runner = _runner(tmp_path, model=frozen)
    assert type(runner.model) is MLPClassifier


def test_not_distributed_means_not_wrapped(tmp_path):
    runner = _runner(tmp_path, launcher="none", model_wrapper_cfg=dict(type="Nonexistent"))
    assert not runner.distributed
    assert type(runner.model).__name__ == "MLPClassifier"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback happens only without CUDA")
def test_the_nccl_fallback_is_logged_once_by_rank_zero_without_a_raw_warning(tmp_path, torchrun_env):
    import os
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner = _runner(tmp_path, env_cfg=dict(dist_cfg=dict(backend="nccl")))
    assert torch_dist.get_backend() == "gloo"
    log = open(os.path.join(runner.log_dir, f"{runner.timestamp}.log")).read()
    assert log.count("backend='nccl' needs CUDA, which this machine lacks; using 'gloo' instead") == 1
