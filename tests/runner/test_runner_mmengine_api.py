"""The Runner's public methods with MMEngine's names and signatures: scale_lr,
register_default_hooks/register_custom_hooks, build_dataloader on the class and on a runner,
build_evaluator with an Evaluator subclass, SyncBatchNorm reverted outside a process group,
the loop properties, load_or_resume, load_checkpoint(revise_keys) and resume(...)."""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

from minirunner.evaluator import Evaluator
from minirunner.hooks import Hook
from minirunner.registry import EVALUATOR, HOOKS, MODELS
from minirunner.runner import EpochBasedTrainLoop, Runner, TestLoop, ValLoop
from minirunner.runner.checkpoint_helpers import RemoteCheckpointError
from minirunner.utils import ConfigError
from runner_support import loader_cfg as _data


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(4, 4, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        default_hooks=dict(checkpoint=None),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


# ---------------------------------------------------------------------------------- scale_lr
def test_scale_lr_public_signature_and_ratio(tmp_path):
    assert list(inspect.signature(Runner.scale_lr).parameters) == ["self", "optim_wrapper", "auto_scale_lr"]
    runner = Runner(**_cfg(tmp_path))
    _ = runner.train_loop
    wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    assert runner.scale_lr(wrapper) is None  # no auto_scale_lr: nothing happens
    assert runner.scale_lr(wrapper, dict(enable=False, base_batch_size=2)) is None
    assert wrapper.param_groups[0]["lr"] == pytest.approx(0.1)
    # batch size 4 in one process against a base of 16: lr x 0.25.
    runner.scale_lr(wrapper, dict(enable=True, base_batch_size=16))
    assert wrapper.param_groups[0]["lr"] == pytest.approx(0.025)


def test_scale_lr_errors(tmp_path):
    runner = Runner(**_cfg(tmp_path, param_scheduler=dict(type="ConstantLR", factor=0.5)))
    _ = runner.train_loop
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    # MMEngine asserts base_batch_size: user code may catch AssertionError.
    with pytest.raises(AssertionError, match="base_batch_size"):
        runner.scale_lr(runner.optim_wrapper, dict(enable=True))
    with pytest.raises(ConfigError):
        runner.scale_lr(runner.optim_wrapper, dict(enable=True))
    runner.param_schedulers = runner.build_param_scheduler(runner._param_scheduler_cfg)
    with pytest.raises(RuntimeError, match="before the parameter schedulers"):
        runner.scale_lr(runner.optim_wrapper, dict(enable=True, base_batch_size=4))


def test_training_uses_scale_lr(tmp_path):
    calls = []

    class Recording(Runner):
        def scale_lr(self, optim_wrapper, auto_scale_lr=None):
            calls.append(auto_scale_lr)
            return super().scale_lr(optim_wrapper, auto_scale_lr)

    runner = Recording(**_cfg(tmp_path, auto_scale_lr=dict(enable=True, base_batch_size=8)))
    runner.train()
    assert calls == [dict(enable=True, base_batch_size=8)]
    assert runner.optim_wrapper.param_groups[0]["lr"] == pytest.approx(0.05)


# ---------------------------------------------------------------------------------- hooks
@HOOKS.register_module(name="ApiTestMarkerHook")
class MarkerHook(Hook):
    priority = "LOWEST"


def test_register_default_and_custom_hooks(tmp_path):
    runner = Runner(**_cfg(tmp_path, default_hooks=dict(logger=None, checkpoint=None, progress=None)))
    names = [runner._hook_names.get(id(h)) for h in runner.hooks]
    assert "logger" not in names and "checkpoint" not in names
    # A second runner, empty, then built up with the MMEngine-named methods.
    bare = Runner(**_cfg(tmp_path / "bare"))
    bare._hooks.clear()
    bare._hook_names.clear()
    bare.register_default_hooks(dict(logger=dict(interval=3), checkpoint=None))
    assert bare.get_hook("logger").interval == 3
    assert bare.get_hook("checkpoint") is None
    assert bare.get_hook("runtime_info") is not None
    before = len(bare.hooks)
    bare.register_custom_hooks([dict(type="ApiTestMarkerHook"), MarkerHook()])
    assert len(bare.hooks) == before + 2
    assert all(isinstance(h, MarkerHook) for h in bare.hooks[-2:])  # LOWEST: last
    assert list(inspect.signature(Runner.register_default_hooks).parameters) == ["self", "hooks"]
    assert list(inspect.signature(Runner.register_custom_hooks).parameters) == ["self", "hooks"]


def test_register_default_hooks_without_argument_registers_all_defaults(tmp_path):
    from minirunner.runner import DEFAULT_HOOKS

    runner = Runner(**_cfg(tmp_path))
    runner._hooks.clear()
    runner._hook_names.clear()
    runner.register_default_hooks()
    assert sorted(runner._hook_names.values()) == sorted(DEFAULT_HOOKS)


def test_custom_hook_errors_name_the_index(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    with pytest.raises(ConfigError) as info:
        runner.register_custom_hooks([MarkerHook(), dict(type="NoSuchHookAnywhere")])
    assert "custom_hooks.1" in str(info.value)


# ---------------------------------------------------------------------------------- dataloader
def test_build_dataloader_as_a_static_method_and_on_a_runner(tmp_path):
    cfg = _data(10, 2, shuffle=True)
    # MMEngine: Runner.build_dataloader(cfg, seed=...) is a static method.
    first = [batch["inputs"] for batch in Runner.build_dataloader(copy.deepcopy(cfg), seed=3)]
    again = [batch["inputs"] for batch in Runner.build_dataloader(copy.deepcopy(cfg), seed=3)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    other = [batch["inputs"] for batch in Runner.build_dataloader(copy.deepcopy(cfg), seed=4)]
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert Runner.build_dataloader(copy.deepcopy(cfg)).batch_size == 2  # seed=None works too
    # On a runner, the run's seed is the default.
    runner = Runner(**_cfg(tmp_path, randomness=dict(seed=3)))
    from_runner = [batch["inputs"] for batch in runner.build_dataloader(copy.deepcopy(cfg))]
    assert all(torch.equal(a, b) for a, b in zip(first, from_runner))
    loader = runner.build_dataloader(copy.deepcopy(cfg))
    assert runner.build_dataloader(loader) is loader  # a DataLoader is returned as is


def test_mmengine_style_static_override_gets_the_run_seed(tmp_path):
    seen = []

    class StaticOverride(Runner):
        @staticmethod
        def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
            seen.append(seed)
            return Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    runner = StaticOverride(**_cfg(tmp_path, randomness=dict(seed=11)))
    _ = runner.train_loop
    _ = runner.val_loop
    assert seen == [11, 11]


# ---------------------------------------------------------------------------------- evaluator
@EVALUATOR.register_module(name="ApiTestEvaluator")
class CountingEvaluator(Evaluator):
    """An Evaluator subclass, named by type in val_evaluator."""

    def evaluate(self, size):
        metrics = super().evaluate(size)
        metrics["evaluated_size"] = size
        return metrics


def test_build_evaluator_accepts_a_registered_evaluator_subclass(tmp_path):
    runner = Runner(**_cfg(tmp_path, val_evaluator=dict(type="ApiTestEvaluator", metrics=[dict(type="Accuracy")])))
    evaluator = runner.build_evaluator(dict(type="ApiTestEvaluator", metrics=dict(type="Accuracy")))
    assert type(evaluator) is CountingEvaluator
    metrics = runner.val()
    assert metrics["evaluated_size"] == 4 and "accuracy/top1" in metrics
    built = Evaluator(dict(type="Accuracy"))
    assert runner.build_evaluator(built) is built
    assert type(runner.build_evaluator([dict(type="Accuracy")])) is Evaluator
    assert type(runner.build_evaluator(dict(type="Accuracy"))) is Evaluator
    with pytest.raises(TypeError):  # MMEngine raises TypeError here
        runner.build_evaluator(42)
    from minirunner.evaluator import Accuracy

    wrapped = runner.build_evaluator(Accuracy())
    assert type(wrapped) is Evaluator and isinstance(wrapped.metrics[0], Accuracy)

    class OwnEvaluator:  # not an Evaluator subclass, but has its methods: used as it is
        def process(self, data_samples, data_batch=None): ...
        def evaluate(self, size): return {}

    own = OwnEvaluator()
    assert runner.build_evaluator(own) is own


# ---------------------------------------------------------------------------------- SyncBatchNorm
@MODELS.register_module(name="ApiTestSyncBNModel")
class SyncBNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.SyncBatchNorm(2)
        self.head = nn.Sequential(nn.Linear(2, 2), nn.SyncBatchNorm(2))


def test_sync_bn_is_reverted_when_not_distributed(tmp_path):
    model = SyncBNModel()
    model.bn.running_mean.fill_(3.0)
    weight = model.bn.weight
    runner = Runner(model=model, work_dir=str(tmp_path))
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in runner.model.modules())
    bn = runner.model.bn
    assert isinstance(bn, nn.modules.batchnorm._BatchNorm)
    assert bn.weight is weight  # the same parameter object
    assert torch.equal(bn.running_mean, torch.full((2,), 3.0))
    # It runs on CPU in training mode, where torch's SyncBatchNorm refuses to.
    runner.model.train()
    out = runner.model.bn(torch.randn(4, 2, 3, 3))
    assert out.shape == (4, 2, 3, 3)
    assert runner.model.head[1](torch.randn(4, 2)).shape == (4, 2)  # any input rank, like SyncBN


def test_revert_sync_batchnorm_copies_state_and_mode():
    from minirunner.model import revert_sync_batchnorm

    sync = nn.SyncBatchNorm(3, eps=1e-3, momentum=0.2, affine=True)
    sync.running_var.fill_(2.0)
    sync.num_batches_tracked.fill_(7)
    sync.eval()
    plain = revert_sync_batchnorm(sync)
    assert not isinstance(plain, nn.SyncBatchNorm)
    assert (plain.eps, plain.momentum, plain.training) == (1e-3, 0.2, False)
    assert torch.equal(plain.running_var, torch.full((3,), 2.0)) and int(plain.num_batches_tracked) == 7
    x = torch.randn(5, 3, 2)
    expected = (x - 0.0) / torch.sqrt(torch.tensor(2.0) + 1e-3)  # eval: running stats, weight 1, bias 0
    assert torch.allclose(plain(x), expected, atol=1e-6)


# ---------------------------------------------------------------------------------- loops
def test_loop_properties(tmp_path):
    runner = Runner(**_cfg(tmp_path, test_dataloader=_data(4, 2, shuffle=False), test_cfg=dict(),
                           test_evaluator=dict(type="Accuracy")))
    assert isinstance(runner.train_loop, EpochBasedTrainLoop)
    assert runner.train_loop is runner.train_loop  # built once
    assert isinstance(runner.val_loop, ValLoop)
    assert isinstance(runner.test_loop, TestLoop)
    assert runner.train_loop.max_epochs == 2 and runner.max_iters == 4
    assert runner.val_loop.dataloader is runner.val_dataloader
    bare = Runner(model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
                  work_dir=str(tmp_path / "bare"))
    # As in MMEngine: None when not configured; train()/val()/test() say what is missing.
    assert bare.train_loop is None and bare.val_loop is None and bare.test_loop is None
    for method in (bare.train, bare.val, bare.test):
        with pytest.raises(RuntimeError, match="no (training|val|test) set up"):
            method()


# ---------------------------------------------------------------------------------- checkpoints
def _trained(tmp_path, **overrides) -> Runner:
    runner = Runner(**_cfg(tmp_path / "first", default_hooks=dict(), **overrides))
    runner.train()
    return runner


def test_load_checkpoint_signature_and_revise_keys(tmp_path):
    params = inspect.signature(Runner.load_checkpoint).parameters
    assert list(params) == ["self", "filename", "map_location", "strict", "revise_keys"]
    assert params["map_location"].default == "cpu" and params["strict"].default is False
    first = _trained(tmp_path)
    path = tmp_path / "first" / "epoch_2.pth"
    saved = torch.load(path, weights_only=True)
    # Keys saved under another prefix, renamed back with revise_keys.
    saved["state_dict"] = {f"backbone.{k}": v for k, v in saved["state_dict"].items()}
    prefixed = tmp_path / "prefixed.pth"
    torch.save(saved, prefixed)
    fresh = Runner(**_cfg(tmp_path / "second", randomness=dict(seed=5)))
    fresh.load_checkpoint(str(prefixed), revise_keys=[(r"^backbone\.", "")])
    for key, value in first.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value)
    with pytest.raises(RuntimeError):  # strict: nothing matches without the revision
        Runner(**_cfg(tmp_path / "third")).load_checkpoint(str(prefixed), strict=True)


def test_load_checkpoint_refuses_urls(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    with pytest.raises(RemoteCheckpointError, match="Download it first"):
        runner.load_checkpoint("https://download.example.org/model.pth")
    with pytest.raises(RemoteCheckpointError):
        runner.resume("https://download.example.org/model.pth")


def test_resume_with_mmengine_signature(tmp_path):
    params = inspect.signature(Runner.resume).parameters
    assert list(params) == ["self", "filename", "resume_optimizer", "resume_param_scheduler", "map_location"]
    assert params["map_location"].default == "default"
    first = _trained(tmp_path, param_scheduler=dict(type="MultiStepLR", milestones=[1], gamma=0.1))
    path = str(tmp_path / "first" / "epoch_1.pth")
    runner = Runner(**_cfg(tmp_path / "second", param_scheduler=dict(type="MultiStepLR", milestones=[1], gamma=0.1)))
    runner.resume(path)  # builds the loop, the optimizer wrapper and the schedulers itself
    assert (runner.epoch, runner.iter) == (1, 2)
    saved = torch.load(path, weights_only=True)
    assert runner.optim_wrapper.state_dict()["state"].keys() == saved["optimizer"]["state"].keys()
    assert runner.param_schedulers[0].last_step == saved["param_schedulers"][0]["last_step"]
    for key, value in saved["state_dict"].items():
        assert torch.equal(runner.model.state_dict()[key], value)
    assert first.epoch == 2


def test_resume_without_optimizer_and_schedulers(tmp_path):
    _trained(tmp_path, param_scheduler=dict(type="MultiStepLR", milestones=[1], gamma=0.1))
    path = str(tmp_path / "first" / "epoch_1.pth")
    runner = Runner(**_cfg(tmp_path / "second", param_scheduler=dict(type="MultiStepLR", milestones=[1], gamma=0.1)))
    runner.resume(path, resume_optimizer=False, resume_param_scheduler=False)
    assert (runner.epoch, runner.iter) == (1, 2)
    assert runner.optim_wrapper.state_dict()["state"] == {}  # the optimizer starts afresh
    assert runner.param_schedulers[0].last_step == 0  # the schedule starts from its beginning
    assert runner.optim_wrapper.param_groups[0]["lr"] == pytest.approx(0.1)


def test_load_or_resume(tmp_path):
    _trained(tmp_path)
    path = str(tmp_path / "first" / "epoch_1.pth")
    saved = torch.load(path, weights_only=True)
    # load_from alone: the weights only, once.
    runner = Runner(**_cfg(tmp_path / "second", load_from=path))
    runner.load_or_resume()
    assert runner.iter == 0
    for key, value in saved["state_dict"].items():
        assert torch.equal(runner.model.state_dict()[key], value)
    with torch.no_grad():
        for param in runner.model.parameters():
            param.zero_()
    runner.load_or_resume()  # already loaded: nothing happens
    assert all(float(p.abs().sum()) == 0 for p in runner.model.parameters())
    # resume=True with load_from: resume from that file.
    resumed = Runner(**_cfg(tmp_path / "third", load_from=path, resume=True))
    resumed.load_or_resume()
    assert (resumed.epoch, resumed.iter) == (1, 2)


def test_train_calls_load_or_resume(tmp_path):
    calls = []

    class Recording(Runner):
        def load_or_resume(self):
            calls.append(self.epoch)
            return super().load_or_resume()

    _trained(tmp_path)
    runner = Recording(**_cfg(tmp_path / "first", resume=True))
    runner.train()
    assert calls == [0]  # called once, before the resume restored the counters
    assert runner.epoch == 2 and runner._resume_path.endswith("epoch_2.pth")
