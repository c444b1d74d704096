"""Hook registration order, priorities, default_hooks merging, and per-event dispatch."""

from __future__ import annotations

import pytest

from minirunner.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    Hook,
    IterTimerHook,
    LoggerHook,
    ProgressBarHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from minirunner.registry import HOOKS
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg as _data


def _owner(handler):
    """The hook behind a dispatch-table entry: a bound method, or a partial of one."""
    return getattr(handler, "func", handler).__self__


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(8, 4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(4, 2, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        test_dataloader=_data(6, 2, shuffle=False),
        test_cfg=dict(),
        test_evaluator=dict(type="Accuracy"),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class Named(Hook):
    """A hook that does nothing but has a name and, optionally, a priority."""

    def __init__(self, name: str, priority=None) -> None:
        self.name = name
        if priority is not None:
            self.priority = priority

    def before_train(self, runner) -> None:
        pass


@HOOKS.register_module(name="OrderTestCallCounter")
class CallCounter(Hook):
    """Overrides only after_train_iter and counts its calls."""

    def __init__(self, label: str = "counter") -> None:
        self.label = label
        self.calls = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.calls += 1


def _labels(runner: Runner) -> list[str]:
    labels = []
    for hook in runner.hooks:
        name = getattr(hook, "name", None) or getattr(hook, "label", None) or type(hook).__name__
        labels.append(name)
    return labels


DEFAULT_ORDER = ["RuntimeInfoHook", "IterTimerHook", "DistSamplerSeedHook", "LoggerHook", "ProgressBarHook", "ParamSchedulerHook",
                 "CheckpointHook"]


def test_default_hooks_registered_under_their_names(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    assert _labels(runner) == DEFAULT_ORDER
    expected = {
        "runtime_info": (RuntimeInfoHook, "VERY_HIGH"),
        "timer": (IterTimerHook, "NORMAL"),
        "sampler_seed": (DistSamplerSeedHook, "NORMAL"),
        "logger": (LoggerHook, "BELOW_NORMAL"),
        "progress": (ProgressBarHook, "BELOW_NORMAL"),
        "param_scheduler": (ParamSchedulerHook, "LOW"),
        "checkpoint": (CheckpointHook, "VERY_LOW"),
    }
    for name, (cls, priority) in expected.items():
        hook = runner.get_hook(name)
        assert type(hook) is cls and hook.priority == priority
    assert runner.get_hook("logger").interval == 10
    checkpoint = runner.get_hook("checkpoint")
    assert checkpoint.interval == 1 and checkpoint.by_epoch is True


def test_priorities_by_name_and_int_and_registration_order(tmp_path):
    custom = [
        Named("normal_a"),                      # NORMAL 50, after the default NORMAL hooks
        Named("highest", "HIGHEST"),            # 0: before runtime_info (10)
        Named("int_55", 55),                    # between NORMAL 50 and BELOW_NORMAL 60
        Named("normal_b", "NORMAL"),            # equal to normal_a: keeps registration order
        Named("very_low_int", 90),              # equal to checkpoint (90), registered later
        Named("lowest", "LOWEST"),
        Named("above_normal", "ABOVE_NORMAL"),  # 40: before the default NORMAL hooks
    ]
    runner = Runner(**_cfg(tmp_path, custom_hooks=custom))
    assert _labels(runner) == [
        "highest", "RuntimeInfoHook", "above_normal", "IterTimerHook", "DistSamplerSeedHook", "normal_a",
        "normal_b", "int_55", "LoggerHook", "ProgressBarHook", "ParamSchedulerHook", "CheckpointHook", "very_low_int", "lowest",
    ]


def test_register_hook_with_priority_argument(tmp_path):
    runner = Runner(**_cfg(tmp_path))
    runner.register_hook(Named("low"), priority="LOW")        # 70, after param_scheduler (70)
    runner.register_hook(Named("high"), priority=30)          # HIGH
    runner.register_hook(Named("first"), priority="HIGHEST")
    assert _labels(runner) == [
        "first", "RuntimeInfoHook", "high", "IterTimerHook", "DistSamplerSeedHook", "LoggerHook", "ProgressBarHook",
        "ParamSchedulerHook", "low", "CheckpointHook",
    ]


@pytest.mark.parametrize("priority", ["MEDIUM", 101, -1, True])
def test_bad_priority_is_a_config_error(tmp_path, priority):
    runner = Runner(**_cfg(tmp_path))
    with pytest.raises(ConfigError, match="priority"):
        runner.register_hook(Named("bad"), priority=priority)


def test_default_hooks_merge_by_name_and_none_removes(tmp_path):
    cfg = _cfg(
        tmp_path,
        default_hooks=dict(
            logger=dict(interval=3),                        # merged into the default LoggerHook
            checkpoint=dict(type="CheckpointHook", interval=2, max_keep_ckpts=1),
            sampler_seed=None,                              # removed
            timer=None,
        ),
    )
    runner = Runner(**cfg)
    assert _labels(runner) == ["RuntimeInfoHook", "LoggerHook", "ProgressBarHook", "ParamSchedulerHook", "CheckpointHook"]
    assert runner.get_hook("logger").interval == 3
    assert runner.get_hook("checkpoint").interval == 2 and runner.get_hook("checkpoint").max_keep_ckpts == 1
    assert runner.get_hook("sampler_seed") is None


def test_default_hook_replaced_by_another_type_under_its_name(tmp_path):
    cfg = _cfg(tmp_path, default_hooks=dict(logger=dict(type="OrderTestCallCounter", label="my_logger")))
    runner = Runner(**cfg)
    assert isinstance(runner.get_hook("logger"), CallCounter)
    assert not any(isinstance(h, LoggerHook) for h in runner.hooks)
    # The replacement takes its own class priority (NORMAL), not the logger's.
    assert _labels(runner) == ["RuntimeInfoHook", "IterTimerHook", "DistSamplerSeedHook", "my_logger", "ProgressBarHook",
                               "ParamSchedulerHook", "CheckpointHook"]


def test_custom_hooks_from_config_with_priority(tmp_path):
    custom = [
        dict(type="OrderTestCallCounter", label="late", priority="LOWEST"),
        dict(type="OrderTestCallCounter", label="early", priority="VERY_HIGH"),  # ties runtime_info
        dict(type="OrderTestCallCounter", label="int_65", priority=65),
    ]
    runner = Runner(**_cfg(tmp_path, custom_hooks=custom))
    assert _labels(runner) == ["RuntimeInfoHook", "early", "IterTimerHook", "DistSamplerSeedHook", "LoggerHook", "ProgressBarHook",
                               "int_65", "ParamSchedulerHook", "CheckpointHook", "late"]
    assert [h.priority for h in runner.hooks if isinstance(h, CallCounter)] == ["VERY_HIGH", 65, "LOWEST"]


def test_unknown_custom_hook_type_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"custom_hooks\.1"):
        Runner(**_cfg(tmp_path, custom_hooks=[dict(type="OrderTestCallCounter"), dict(type="OrderTestCallCountr")]))


def test_dispatch_only_to_overridden_events(tmp_path):
    counter = CallCounter()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[counter]))
    listed = {event for event, methods in runner._hook_table.items() if any(_owner(m) is counter for m in methods)}
    assert listed == {"after_train_iter"}
    # A default hook that only acts before epochs is not called on iterations.
    sampler_seed = runner.get_hook("sampler_seed")
    events_of_sampler_seed = {
        event for event, methods in runner._hook_table.items() if any(_owner(m) is sampler_seed for m in methods)
    }
    assert events_of_sampler_seed == {"before_train_epoch"}
    runner.train()
    assert counter.calls == 4  # 2 iterations x 2 epochs


def test_call_hook_calls_in_priority_order_with_kwargs(tmp_path):
    calls = []

    class Tracer(Hook):
        def __init__(self, name, priority):
            self.name, self.priority = name, priority

        def after_val_epoch(self, runner, metrics=None):
            calls.append((self.name, metrics))

    runner = Runner(**_cfg(tmp_path, custom_hooks=[Tracer("b", 60), Tracer("a", 20)]))
    runner.call_hook("after_val_epoch", metrics={"m": 1.0})
    assert calls == [("a", {"m": 1.0}), ("b", {"m": 1.0})]
    runner.call_hook("before_test")  # nobody implements it: nothing happens
    assert len(calls) == 2


def test_generic_after_iter_gets_train_val_and_test_iterations(tmp_path):
    class EveryIter(Hook):
        def __init__(self):
            self.seen = []

        def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
            self.seen.append((mode, batch_idx))

    class EveryEpoch(Hook):
        def __init__(self):
            self.seen = []

        def _before_epoch(self, runner, mode="train"):
            self.seen.append(mode)

    iters, epochs = EveryIter(), EveryEpoch()
    cfg = _cfg(tmp_path, custom_hooks=[iters, epochs], train_cfg=dict(by_epoch=True, max_epochs=1))
    runner = Runner(**cfg)
    table = runner._hook_table
    for event in ("after_train_iter", "after_val_iter", "after_test_iter"):
        assert any(_owner(m) is iters for m in table[event])
    assert not any(_owner(m) is iters for m in table.get("before_train_iter", []))
    runner.train()
    runner.test()
    # 2 train iterations (8 / 4), 2 val (4 / 2), 3 test (6 / 2).
    assert iters.seen == [("train", 0), ("train", 1), ("val", 0), ("val", 1), ("test", 0), ("test", 1), ("test", 2)]
    assert epochs.seen == ["train", "val", "test"]


def test_a_runner_that_overrides_call_hook_sees_every_iteration_event(tmp_path):
    # The loops call per-iteration hooks without going through call_hook; an override of
    # call_hook must still see those events, with their keyword arguments.
    class Recording(Runner):
        def __init__(self, *args, **kwargs):
            self.calls = []
            super().__init__(*args, **kwargs)

        def call_hook(self, fn_name, **kwargs):
            self.calls.append((fn_name, kwargs.get("batch_idx")))
            super().call_hook(fn_name, **kwargs)

    counter = IterCounter()
    runner = Recording(**_cfg(tmp_path, custom_hooks=[counter], train_cfg=dict(by_epoch=True, max_epochs=1)))
    runner.train()
    iteration_calls = [call for call in runner.calls if call[0].endswith("_train_iter")]
    assert iteration_calls == [
        ("before_train_iter", 0), ("after_train_iter", 0), ("before_train_iter", 1), ("after_train_iter", 1)
    ]
    assert counter.count == 2  # and the hooks behind it still ran


def test_a_hook_registered_after_the_loop_is_built_is_called_every_iteration(tmp_path):
    runner = Runner(**_cfg(tmp_path, train_cfg=dict(by_epoch=True, max_epochs=2)))
    _ = runner.train_loop  # the loop now holds the per-iteration handler lists
    late = IterCounter()
    runner.register_hook(late)
    runner.train()
    assert late.count == 4


class IterCounter(Hook):
    """Counts the training iterations it sees, before and after each."""

    def __init__(self) -> None:
        self.count = 0
        self._open = False

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        assert not self._open
        self._open = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        assert self._open and "loss" in outputs
        self._open = False
        self.count += 1
