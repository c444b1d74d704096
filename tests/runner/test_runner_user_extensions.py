"""A user's Hook subclass and Runner subclass, registered and named in a config, take effect."""

from __future__ import annotations

import textwrap

import pytest
import torch

from minirunner.config import Config
from minirunner.hooks import Hook
from minirunner.registry import HOOKS, RUNNERS
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg as _data


def _cfg_dict(work_dir, **overrides) -> dict:
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


@HOOKS.register_module(name="ExtTestLossRecorder")
class LossRecorder(Hook):
    """Records the loss after every training iteration and the metrics after validation."""

    priority = "VERY_LOW"

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.losses: list[float] = []
        self.metrics: list[dict] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs["loss"]))

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics.append(dict(metrics))


@HOOKS.register_module(name="ExtTestFreezeHook")
class FreezeHook(Hook):
    """Sets every learning rate to zero before training: the weights must not change."""

    def before_train(self, runner) -> None:
        for group in runner.optim_wrapper.param_groups:
            group["lr"] = 0.0


@RUNNERS.register_module(name="ExtTestRunner")
class MyRunner(Runner):
    """Overrides a build step: the model's last layer starts at zero."""

    def build_model(self, model):
        model = super().build_model(model)
        with torch.no_grad():
            model.net[-1].weight.zero_()
            model.net[-1].bias.zero_()
        self.built_by_subclass = True
        return model


@RUNNERS.register_module(name="ExtTestKwargsRunner")
class KwargsRunner(Runner):
    """The common subclass shape: forwards everything and adds one argument of its own."""

    def __init__(self, *args, note: str = "none", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.note = note


def _hook_of(runner: Runner, cls: type) -> Hook:
    found = [hook for hook in runner.hooks if isinstance(hook, cls)]
    assert len(found) == 1
    return found[0]


def test_user_hook_from_config_takes_effect(tmp_path):
    cfg = Config(_cfg_dict(tmp_path, custom_hooks=[dict(type="ExtTestLossRecorder", tag="x")]))
    runner = Runner.from_cfg(cfg)
    runner.train()
    recorder = _hook_of(runner, LossRecorder)
    assert recorder.tag == "x"
    assert len(recorder.losses) == 4 and all(loss > 0 for loss in recorder.losses)
    assert len(recorder.metrics) == 2 and "accuracy/top1" in recorder.metrics[0]
    # VERY_LOW is placed after the default hooks.
    assert runner.hooks[-1] is recorder


def test_user_hook_can_change_training(tmp_path):
    runner = Runner.from_cfg(Config(_cfg_dict(tmp_path, custom_hooks=[dict(type="ExtTestFreezeHook")])))
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    after = runner.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_user_runner_picked_by_runner_type(tmp_path):
    runner = Runner.from_cfg(Config(_cfg_dict(tmp_path, runner_type="ExtTestRunner")))
    assert type(runner) is MyRunner and runner.built_by_subclass
    assert torch.count_nonzero(runner.model.net[-1].weight) == 0
    runner.train()
    # Trained from the subclass's initialisation, so the layer moved away from zero.
    assert torch.count_nonzero(runner.model.net[-1].weight) > 0


def test_user_runner_with_args_kwargs_init(tmp_path):
    runner = Runner.from_cfg(Config(_cfg_dict(tmp_path, runner_type="ExtTestKwargsRunner", note="hello")))
    assert type(runner) is KwargsRunner
    assert runner.note == "hello"
    assert runner.train() is runner.model


def test_unknown_runner_type_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"runner_type.*ExtTestRunner"):
        Runner.from_cfg(Config(_cfg_dict(tmp_path, runner_type="ExtTestRuner")))


def test_user_classes_from_a_config_file_with_custom_imports(tmp_path, monkeypatch):
    module_dir = tmp_path / "user_code"
    module_dir.mkdir()
    (module_dir / "ext_test_user_module.py").write_text(textwrap.dedent(
        """
        from minirunner.hooks import Hook
        from minirunner.registry import HOOKS, RUNNERS
        from minirunner.runner import Runner

        @HOOKS.register_module()
        class ExtTestFileHook(Hook):
            priority = 'LOW'
            def __init__(self, every=1):
                self.every = every
                self.count = 0
            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                if self.every_n_train_iters(runner, self.every):
                    self.count += 1

        @RUNNERS.register_module()
        class ExtTestFileRunner(Runner):
            def build_optim_wrapper(self, optim_wrapper):
                wrapper = super().build_optim_wrapper(optim_wrapper)
                self.optimizer_seen = type(wrapper.optimizer).__name__
                return wrapper
        """
    ))
    monkeypatch.syspath_prepend(str(module_dir))
    config = tmp_path / "ext_config.py"
    config.write_text(textwrap.dedent(
        f"""
        custom_imports = dict(imports=['ext_test_user_module'], allow_failed_imports=False)
        runner_type = 'ExtTestFileRunner'
        lr = 0.05  # a helper variable
        model = dict(type='MLPClassifier', in_features=4, hidden_dims=(8,), num_classes=2)
        work_dir = {str(tmp_path / 'work')!r}
        train_dataloader = dict(
            dataset=dict(type='SyntheticClassification', num_samples=8, num_features=4, num_classes=2),
            sampler=dict(type='DefaultSampler', shuffle=True), batch_size=2)
        train_cfg = dict(by_epoch=True, max_epochs=1)
        optim_wrapper = dict(optimizer=dict(type='Adam', lr=lr))
        custom_hooks = [dict(type='ExtTestFileHook', every=2)]
        default_hooks = dict(checkpoint=None)
        """
    ))
    runner = Runner.from_cfg(Config.fromfile(str(config)))
    assert type(runner).__name__ == "ExtTestFileRunner"
    runner.train()
    assert runner.optimizer_seen == "Adam"
    assert runner.optim_wrapper.param_groups[0]["lr"] == pytest.approx(0.05)
    hook = [h for h in runner.hooks if type(h).__name__ == "ExtTestFileHook"][0]
    assert hook.count == 2  # 4 iterations, every 2


def test_every_build_step_is_an_override_point(tmp_path):
    calls = []

    class Tracing(Runner):
        def build_model(self, model):
            calls.append("model")
            return super().build_model(model)

        def build_dataloader(self, dataloader):
            calls.append("dataloader")
            return super().build_dataloader(dataloader)

        def build_optim_wrapper(self, optim_wrapper):
            calls.append("optim_wrapper")
            return super().build_optim_wrapper(optim_wrapper)

        def build_param_scheduler(self, scheduler):
            calls.append("param_scheduler")
            return super().build_param_scheduler(scheduler)

        def build_train_loop(self, loop):
            calls.append("train_loop")
            return super().build_train_loop(loop)

        def build_val_loop(self, loop):
            calls.append("val_loop")
            return super().build_val_loop(loop)

        def build_evaluator(self, evaluator):
            calls.append("evaluator")
            return super().build_evaluator(evaluator)

    cfg = _cfg_dict(tmp_path, param_scheduler=dict(type="ConstantLR", factor=0.5))
    Tracing.from_cfg(Config(cfg)).train()
    assert calls[0] == "model"
    for step in ("dataloader", "optim_wrapper", "param_scheduler", "train_loop", "val_loop", "evaluator"):
        assert step in calls, step
    assert calls.count("dataloader") == 2  # train and val
