"""Checkpoints do not depend on compiling: a compiled run resumes from an uncompiled run's
checkpoint and the other way round, and ends as an uninterrupted run of its own mode."""

from __future__ import annotations

import pytest
import torch

from minirunner.runner import Runner
from runner_support import loader_cfg

MAX_EPOCHS = 3  # 6 iterations each
RESUME_AT = 10  # inside the accumulation window 10-12, so its gradients are in the checkpoint


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch, tmp_path):
    torch._dynamo.reset()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "not-used"))
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "not-used"))
    yield
    torch._dynamo.reset()


def _train(work_dir, compiled: bool, resume: str | None = None) -> Runner:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(24, 4, num_features=8, num_classes=3),
        train_cfg=dict(by_epoch=True, max_epochs=MAX_EPOCHS),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9), accumulative_counts=3),
        param_scheduler=[
            dict(type="LinearLR", by_epoch=False, start_factor=0.2, begin=0, end=7),
            dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.7),
        ],
        default_hooks=dict(checkpoint=dict(interval=5, by_epoch=False)),
        randomness=dict(seed=3),
    )
    if compiled:
        cfg["compile"] = dict(backend="aot_eager")
    if resume is not None:
        cfg["resume"] = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _assert_same_end(resumed: Runner, uninterrupted: Runner) -> None:
    assert (resumed.epoch, resumed.iter) == (uninterrupted.epoch, uninterrupted.iter) == (MAX_EPOCHS, 18)
    for key, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=1e-5, rtol=0)
    ours, theirs = resumed.optim_wrapper.state_dict(), uninterrupted.optim_wrapper.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for index, state in theirs["state"].items():
        torch.testing.assert_close(ours["state"][index]["momentum_buffer"], state["momentum_buffer"], atol=1e-5, rtol=0)
    assert [s.state_dict() for s in resumed.param_schedulers] == [s.state_dict() for s in uninterrupted.param_schedulers]
    assert resumed.optim_wrapper.inner_count == uninterrupted.optim_wrapper.inner_count == 18


def test_compiled_and_eager_runs_resume_from_each_other(tmp_path):
    eager = _train(tmp_path / "eager", compiled=False)
    compiled = _train(tmp_path / "compiled", compiled=True)

    resumed = _train(tmp_path / "compiled_from_eager", True, resume=str(tmp_path / "eager" / f"iter_{RESUME_AT}.pth"))
    _assert_same_end(resumed, compiled)
    resumed = _train(tmp_path / "eager_from_compiled", False, resume=str(tmp_path / "compiled" / f"iter_{RESUME_AT}.pth"))
    _assert_same_end(resumed, eager)
    # The resume really started at RESUME_AT: no checkpoint before it was written again.
    assert not (tmp_path / "eager_from_compiled" / "iter_5.pth").exists()
    assert (tmp_path / "eager_from_compiled" / "iter_15.pth").exists()
