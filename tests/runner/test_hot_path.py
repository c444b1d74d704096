"""What runs every iteration: only the hooks that have work to do there."""

from __future__ import annotations

from minirunner.runner import Runner
from runner_support import loader_cfg


def _names(runner: Runner, event: str) -> list[str]:
    names = {id(hook): name for name, hook in ((runner._hook_names.get(id(h)), h) for h in runner.hooks)}
    return [names[id(handler.__self__)] for handler in runner.iteration_handlers(event)]


def test_default_hooks_that_are_off_or_idle_are_not_called_per_iteration(tmp_path):
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(16, 4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        log_level="WARNING",
    )
    runner.train()
    # No scheduler to step, checkpoints by epoch, no terminal for a progress bar (pytest
    # captures stdout), no EMA: what is left is what every iteration needs.
    assert _names(runner, "before_train_iter") == ["runtime_info", "timer"]
    assert _names(runner, "after_train_iter") == ["runtime_info", "timer", "logger"]
