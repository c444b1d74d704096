"""ProfilerHook: a short run writes a Chrome trace that loads as JSON and names the model's
operators, logs a table of the top operators, and profiles only its window."""

from __future__ import annotations

import json

import pytest
import torch

from minirunner.hooks import Hook, ProfilerHook
from minirunner.registry import HOOKS
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg


class ProfilerState(Hook):
    """Whether the autograd profiler was on during each training iteration."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.enabled: list[bool] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.enabled.append(torch.autograd._profiler_enabled())


def _run(work_dir, profiler: dict, max_epochs: int = 2) -> tuple[Runner, ProfilerState]:
    state = ProfilerState()
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(16, 4, shuffle=False),  # 4 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, progress=None, logger=dict(interval=4)),
        custom_hooks=[dict(type="ProfilerHook", **profiler), state],
    )
    runner.train()
    return runner, state


def _linear_events(path) -> list[dict]:
    trace = json.loads(path.read_text())
    return [event for event in trace["traceEvents"] if event.get("name") == "aten::linear"]


def test_iterations_window_writes_a_trace_and_a_table(tmp_path):
    runner, state = _run(tmp_path, dict(by_epoch=False, profile_times=3))
    trace = tmp_path / runner.timestamp / "profiler" / "trace_rank0.json"
    # 3 profiled iterations of an MLP with two Linear layers: 6 forward calls of aten::linear.
    assert len(_linear_events(trace)) == 6
    assert state.enabled == [True] * 3 + [False] * 5  # later iterations run unprofiled
    log = next(tmp_path.glob("*/*.log")).read_text()
    assert "profiler: profiling iterations 1-3" in log and f"Chrome trace written to {trace}" in log
    table = log.split("profiler: top operators", 1)[1]
    assert "Self CPU" in table and "aten::" in table


def test_epoch_window_json_trace_path_and_tensorboard_format(tmp_path):
    runner, state = _run(tmp_path, dict(profile_times=1, json_trace_path="my/trace.json", record_shapes=True,
                                        on_trace_ready=dict(type="tb_trace")))
    trace = tmp_path / runner.timestamp / "my" / "trace.json"
    assert len(_linear_events(trace)) == 8  # the first epoch's 4 iterations
    assert state.enabled == [True] * 4 + [False] * 4
    [tb_trace] = (tmp_path / runner.timestamp / "tf_tracing_logs").glob("*.pt.trace.json")
    assert len(_linear_events(tb_trace)) == 8


def test_schedule_writes_a_trace_per_cycle_and_calls_the_handler(tmp_path):
    seen = []
    runner, state = _run(tmp_path, dict(by_epoch=False, profile_times=6,
                                        schedule=dict(wait=1, warmup=1, active=2, repeat=1),
                                        on_trace_ready=lambda prof: seen.append(prof.step_num)))
    traces = sorted((tmp_path / runner.timestamp / "profiler").glob("*.json"))
    assert [path.name for path in traces] == ["trace_rank0_step4.json"]
    assert len(_linear_events(traces[0])) == 4  # the 2 active iterations
    assert seen == [4] and state.enabled[6:] == [False] * 2


def test_bad_arguments_are_config_errors():
    for kwargs, key in ((dict(profile_times=0), "profile_times"), (dict(by_epoch="yes"), "by_epoch"),
                        (dict(schedule=dict(wait=1, waitt=2)), "schedule"),
                        (dict(on_trace_ready=dict(type="tensorboard")), "on_trace_ready"),
                        (dict(activity_with_cpu=False), "activity_with_cpu")):
        with pytest.raises(ConfigError) as info:
            ProfilerHook(**kwargs)
        assert str(info.value).startswith(f"{key}: "), str(info.value)
    assert HOOKS.get("ProfilerHook") is ProfilerHook


def test_a_trace_path_outside_the_work_dir_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="json_trace_path: .* is outside the work dir"):
        _run(tmp_path / "work", dict(json_trace_path="../../elsewhere.json"))
    assert not (tmp_path / "elsewhere.json").exists()
