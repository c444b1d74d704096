"""CheckpointHook options, file names, the last_checkpoint pointer and checkpoint contents."""

from __future__ import annotations

import os

import pytest
import torch

from minirunner.evaluator import BaseMetric
from minirunner.hooks import CheckpointHook
from minirunner.registry import METRICS
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg as _data

REQUIRED_KEYS = {"meta", "state_dict", "optimizer", "param_schedulers", "message_hub", "rng", "loop", "hooks"}


@METRICS.register_module(name="CkptTestScriptedMetric")
class ScriptedMetric(BaseMetric):
    """Reports the next value of ``values`` at each evaluation, as ``score`` and ``loss``."""

    def __init__(self, values=(1.0,), prefix=None) -> None:
        super().__init__(prefix=prefix)
        self.values = list(values)
        self.calls = 0

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(0 for _ in data_samples)

    def compute_metrics(self, results) -> dict:
        value = self.values[self.calls]
        self.calls += 1
        return {"score": value, "loss": value}


def _cfg(work_dir, checkpoint: dict | None = None, max_epochs: int = 5, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(4, 2),  # 2 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        param_scheduler=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5),
        default_hooks=dict(logger=dict(interval=1000), checkpoint=dict(type="CheckpointHook", **(checkpoint or {}))),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


def _pth_files(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".pth"))


def _pointer(folder) -> str:
    with open(os.path.join(folder, "last_checkpoint")) as handle:
        return handle.read().strip()


def test_epoch_checkpoints_and_pointer(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=2))).train()
    # Every 2 epochs, plus the last one (save_last defaults to True).
    assert _pth_files(tmp_path) == ["epoch_2.pth", "epoch_4.pth", "epoch_5.pth"]
    assert _pointer(tmp_path) == "epoch_5.pth"  # relative: a copied or moved work dir points at its own
    # Nothing half-written is left behind.
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


def test_iter_checkpoints(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=3, by_epoch=False), max_epochs=4)).train()
    # 8 iterations: every 3, plus the last.
    assert _pth_files(tmp_path) == ["iter_3.pth", "iter_6.pth", "iter_8.pth"]
    assert _pointer(tmp_path).endswith("iter_8.pth")
    checkpoint = torch.load(tmp_path / "iter_6.pth", weights_only=True)
    assert checkpoint["meta"]["iter"] == 6 and checkpoint["loop"]["iter"] == 6


def test_save_last_false(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=2, save_last=False))).train()
    assert _pth_files(tmp_path) == ["epoch_2.pth", "epoch_4.pth"]


def test_interval_minus_one_saves_only_the_last(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=-1))).train()
    assert _pth_files(tmp_path) == ["epoch_5.pth"]


def test_interval_minus_one_without_save_last_saves_nothing(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=-1, save_last=False))).train()
    assert _pth_files(tmp_path) == []
    assert not os.path.exists(tmp_path / "last_checkpoint")


def test_max_keep_ckpts_deletes_the_oldest(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=1, max_keep_ckpts=2))).train()
    assert _pth_files(tmp_path) == ["epoch_4.pth", "epoch_5.pth"]
    assert _pointer(tmp_path).endswith("epoch_5.pth")


def test_out_dir(tmp_path):
    out = tmp_path / "elsewhere"
    Runner(**_cfg(tmp_path / "work", dict(interval=5, out_dir=str(out)))).train()
    # As in MMEngine: <out_dir>/<work dir name>.
    assert _pth_files(out / "work") == ["epoch_5.pth"]
    assert _pth_files(tmp_path / "work") == []
    assert _pointer(tmp_path / "work") == str(out / "work" / "epoch_5.pth")


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    scheduler = dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5, end=10)
    runner = Runner(**_cfg(tmp_path, dict(interval=1), max_epochs=2, param_scheduler=scheduler))
    runner.train()
    for name, epoch in (("epoch_1.pth", 1), ("epoch_2.pth", 2)):
        checkpoint = torch.load(tmp_path / name, weights_only=True)
        assert REQUIRED_KEYS <= set(checkpoint), name
        assert checkpoint["meta"]["epoch"] == epoch and checkpoint["meta"]["iter"] == 2 * epoch
        # 2 epochs of 2 iterations: the run's length is saved with the counters.
        assert checkpoint["loop"] == {"epoch": epoch, "iter": 2 * epoch, "max_epochs": 2, "max_iters": 4}
        # Saved at an epoch's end: the next epoch has used none of its samples yet.
        assert checkpoint["sampler"]["epoch"] == epoch and checkpoint["sampler"]["samples"] == 0
        assert isinstance(checkpoint["meta"]["torch_version"], str)
        # The epoch scheduler stepped before the save: the saved state is post-step.
        assert checkpoint["param_schedulers"][0]["last_step"] == epoch
        assert checkpoint["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.1 * 0.5**epoch)
    final = torch.load(tmp_path / "epoch_2.pth", weights_only=True)
    for key, value in runner.model.state_dict().items():
        assert torch.equal(final["state_dict"][key], value)


def test_save_optimizer_and_param_scheduler_false(tmp_path):
    Runner(**_cfg(tmp_path, dict(interval=1, save_optimizer=False, save_param_scheduler=False), max_epochs=1)).train()
    checkpoint = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert "optimizer" not in checkpoint and "param_schedulers" not in checkpoint
    assert {"meta", "state_dict", "message_hub", "rng", "loop", "hooks"} <= set(checkpoint)


def _best_run(tmp_path, values, **checkpoint):
    cfg = _cfg(
        tmp_path, dict(interval=1, **checkpoint), max_epochs=len(values),
        val_dataloader=_data(2, 2, shuffle=False), val_cfg=dict(),
        val_evaluator=dict(type="CkptTestScriptedMetric", values=values),
    )
    runner = Runner(**cfg)
    runner.train()
    return runner, sorted(name for name in os.listdir(tmp_path) if name.startswith("best_"))


def test_save_best_greater_replaces_the_file_when_improved(tmp_path):
    runner, best = _best_run(tmp_path, [50.0, 70.0, 60.0, 80.0, 75.0], save_best="score", rule="greater")
    assert best == ["best_score_epoch_4.pth"]
    checkpoint = torch.load(tmp_path / best[0], weights_only=True)
    assert checkpoint["meta"]["best_score/score"] == 80.0
    # Saved after the 4th epoch (2 iterations each): the counters say what was done.
    assert (checkpoint["loop"]["epoch"], checkpoint["loop"]["iter"]) == (4, 8)
    assert (checkpoint["meta"]["epoch"], checkpoint["meta"]["iter"]) == (4, 8)
    assert "optimizer" not in checkpoint
    hook = runner.get_hook("checkpoint")
    assert hook.best_scores == {"score": 80.0}
    # The best checkpoint is a side copy: resume='auto' continues from the newest one.
    assert _pointer(tmp_path).endswith("epoch_5.pth")


def test_save_best_less(tmp_path):
    _, best = _best_run(tmp_path, [5.0, 3.0, 4.0, 1.0, 2.0], save_best="score", rule="less")
    assert best == ["best_score_epoch_4.pth"]


def test_save_best_rule_inferred_from_name(tmp_path):
    # 'loss' is better when smaller.
    _, best = _best_run(tmp_path, [5.0, 3.0, 4.0], save_best="loss")
    assert best == ["best_loss_epoch_2.pth"]


def test_save_best_auto_uses_the_first_metric(tmp_path):
    runner, best = _best_run(tmp_path, [1.0, 2.0], save_best="auto", rule="greater")
    assert best == ["best_score_epoch_2.pth"]


def test_save_best_with_prefixed_metric_name(tmp_path):
    cfg = _cfg(
        tmp_path, dict(interval=1, save_best="accuracy/top1"), max_epochs=2,
        val_dataloader=_data(4, 2, shuffle=False), val_cfg=dict(), val_evaluator=dict(type="Accuracy"),
    )
    Runner(**cfg).train()
    best = [name for name in os.listdir(tmp_path) if name.startswith("best_")]
    assert len(best) == 1 and best[0].startswith("best_accuracy_top1_epoch_")


def test_save_best_unknown_metric_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"save_best.*scor"):
        _best_run(tmp_path, [1.0], save_best="scor", rule="greater")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(interval=0), "interval"),
        (dict(max_keep_ckpts=0), "max_keep_ckpts"),
        (dict(save_best="score", rule="bigger"), "greater"),
        (dict(save_best=["a", "b"], rule=["greater"]), "rule"),
    ],
)
def test_bad_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CheckpointHook(**kwargs)


def test_max_keep_ckpts_deletes_only_after_the_new_file_is_in_place(tmp_path, monkeypatch):
    from minirunner.checkpoint import atomic as checkpoint_io

    real_fsync = checkpoint_io._fsync_file

    def fsync_fails_for_epoch_3(path):
        if "epoch_3" in path:
            raise OSError("no space left on device")
        real_fsync(path)

    monkeypatch.setattr(checkpoint_io, "_fsync_file", fsync_fails_for_epoch_3)
    with pytest.raises(checkpoint_io.CheckpointError, match="no space"):
        Runner(**_cfg(tmp_path, dict(interval=1, max_keep_ckpts=1))).train()
    # epoch_3.pth never got into place, so epoch_2.pth, the only good one, was kept.
    assert _pth_files(tmp_path) == ["epoch_2.pth"]
    assert _pointer(tmp_path).endswith("epoch_2.pth")
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


def test_stale_temporary_files_are_removed_before_training(tmp_path):
    from minirunner.checkpoint.atomic import _host_tag

    stale = tmp_path / f".epoch_1.pth.tmp-{_host_tag()}-999999999"
    stale.write_bytes(b"half a checkpoint")
    runner = Runner(**_cfg(tmp_path, dict(interval=5), max_epochs=1))
    runner.train()
    assert not stale.exists()
    log = open(os.path.join(runner.log_dir, f"{runner.timestamp}.log")).read()
    assert f"deleted {stale} (left by a writer that died, pid 999999999)" in log
