"""Inside a run, MMLogger and MessageHub calls written for the reference engine reach the run's
console, log file and hub."""

from __future__ import annotations

import glob
import os

from runner_support import loader_cfg

from minirunner.hooks import Hook
from minirunner.logging import MessageHub, MMLogger, print_log
from minirunner.runner import Runner


class _UserHook(Hook):
    """What a user writes for the reference engine, with only the import renamed."""

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        hub = MessageHub.get_current_instance()
        iteration = hub.get_info("iter")
        hub.update_scalar("train/user_metric", float(iteration))
        MMLogger.get_current_instance().info(f"user hook at iter {iteration}")
        print_log(f"print_log at iter {iteration}", logger="current")


def test_user_hook_lines_reach_the_runs_console_and_log_file(tmp_path, capsys):
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=loader_cfg(num_samples=8, batch_size=4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
        custom_hooks=[_UserHook()],
        experiment_name="logging_in_a_run",
    )
    runner.train()
    console = capsys.readouterr().out
    (log_file,) = glob.glob(os.path.join(runner.log_dir, "*.log"))
    written = open(log_file, encoding="utf-8").read()
    for text in ("user hook at iter 0", "user hook at iter 1", "print_log at iter 1"):
        assert console.count(text) == 1, text
        assert written.count(text) == 1, text
    assert runner.message_hub.get_scalar("train/user_metric").data[0] == [0.0, 1.0]
