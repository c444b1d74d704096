"""A run touches only its own files: crafted checkpoint state, copied, moved and branched work
dirs, untrusted pointers, the work-dir lock, preemption leftovers and what is logged."""

from __future__ import annotations

import glob
import logging
import os
import shutil

import pytest
import torch

from minirunner.checkpoint import WorkDirLockedError, save_checkpoint_file
from minirunner.evaluator import BaseMetric
from minirunner.hooks import Hook
from minirunner.registry import METRICS
from minirunner.runner import Runner, TrainingInterrupted
from minirunner.utils import ConfigError
from runner_support import file_hashes, loader_cfg


@METRICS.register_module(name="TrustTestRisingMetric")
class RisingMetric(BaseMetric):
    """Reports 1, 2, 3, ... at successive evaluations, so every validation is a new best."""

    def __init__(self, prefix=None) -> None:
        super().__init__(prefix=prefix)
        self.calls = 0

    def process(self, data_batch, data_samples) -> None:
        self.results.extend(0 for _ in data_samples)

    def compute_metrics(self, results) -> dict:
        self.calls += 1
        return {"score": float(self.calls)}


def _cfg(work_dir, max_epochs: int = 2, checkpoint: dict | None = None, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(4, 2),  # 2 iterations per epoch
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        default_hooks=dict(
            logger=dict(interval=1000),
            checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=2) | (checkpoint or {}),
        ),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


def _with_validation(cfg: dict) -> dict:
    cfg.update(val_dataloader=loader_cfg(4, 2, shuffle=False), val_cfg=dict(), val_evaluator=dict(type="TrustTestRisingMetric"))
    cfg["default_hooks"]["checkpoint"].update(save_best="score", rule="greater")
    return cfg


def _pth(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".pth"))


def _log_text(work_dir) -> str:
    return "".join(open(path).read() for path in sorted(glob.glob(os.path.join(str(work_dir), "*", "*.log"))))


def _edit_hook_state(path, **state) -> None:
    """Rewrite a checkpoint as an attacker would: valid CRCs, loads with weights_only."""
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hooks"]["checkpoint"].update(state)
    save_checkpoint_file(checkpoint, str(path))


# ---------------------------------------------------------------------------------- crafted state
def test_a_crafted_checkpoint_cannot_steer_deletions(tmp_path):
    work = tmp_path / "work"
    Runner(**_with_validation(_cfg(work))).train()
    victim = tmp_path / "victim.pth"  # checkpoint-shaped, outside the work dir
    shutil.copy(work / "epoch_1.pth", victim)
    (work / "notes.pth").write_text("my notes, not a checkpoint")
    before = file_hashes(tmp_path / "victim.pth"), victim.read_bytes()
    _edit_hook_state(
        work / "epoch_2.pth",
        kept=[str(victim), "../victim.pth", "notes.pth", "epoch_1.pth", "epoch_2.pth"],
        best_paths={"score": str(victim)},
        interrupted=["../victim.pth", 7],
    )
    Runner(**_with_validation(_cfg(work, max_epochs=5, resume="auto"))).train()
    assert victim.read_bytes() == before[1]
    assert (work / "notes.pth").read_text() == "my notes, not a checkpoint"
    log = _log_text(work)
    assert f"ignoring the CheckpointHook state entry '{victim}'" in log
    assert "ignoring the CheckpointHook state entry '../victim.pth'" in log
    assert "climbs out of its folder" in log and "is an absolute path" in log
    # The honest entries still rotate: max_keep_ckpts=2 leaves the two newest.
    assert [n for n in _pth(work) if not n.startswith("best_")] == ["epoch_4.pth", "epoch_5.pth", "notes.pth"]


def test_a_symbolic_link_out_of_the_folder_is_not_followed(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    Runner(**_cfg(work)).train()
    elsewhere.mkdir()
    shutil.copy(work / "epoch_1.pth", elsewhere / "epoch_1.pth")
    os.symlink(elsewhere, work / "linked")
    _edit_hook_state(work / "epoch_2.pth", kept=["linked/epoch_1.pth", "epoch_2.pth"])
    Runner(**_cfg(work, max_epochs=4, resume="auto")).train()
    assert (elsewhere / "epoch_1.pth").is_file()
    assert "leads out of the folder through a symbolic link" in _log_text(work)


def test_checkpoint_shaped_files_the_state_does_not_name_are_kept(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    stranger = work / "epoch_0.pth"
    stranger.write_bytes(b"PK\x03\x04 someone else's file")
    Runner(**_cfg(work, max_epochs=4)).train()
    assert _pth(work) == ["epoch_0.pth", "epoch_3.pth", "epoch_4.pth"]


def test_every_deletion_is_logged(tmp_path):
    work = tmp_path / "work"
    Runner(**_with_validation(_cfg(work, max_epochs=3))).train()
    log = _log_text(work)
    assert f"deleted {work / 'epoch_1.pth'} (max_keep_ckpts=2)" in log
    assert f"deleted {work / 'best_score_epoch_1.pth'} (replaced by the new best best_score_epoch_2.pth)" in log


# ---------------------------------------------------------------------------------- copies and branches
def test_branching_leaves_the_original_untouched(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    Runner(**_cfg(a)).train()
    before = file_hashes(a)
    Runner(**_cfg(b, max_epochs=5, resume=str(a / "epoch_2.pth"))).train()
    assert file_hashes(a) == before
    assert _pth(b) == ["epoch_4.pth", "epoch_5.pth"]  # B's own two newest, rotation counted in B
    assert (b / "last_checkpoint").read_text() == "epoch_5.pth"


def test_a_copied_work_dir_resumes_from_its_own_files_and_rotates_them(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    Runner(**_cfg(a)).train()
    shutil.copytree(a, b)
    before = file_hashes(a)
    runner = Runner(**_cfg(b, max_epochs=4, resume="auto"))
    runner.train()
    assert runner._resume_path == str(b / "epoch_2.pth")
    assert file_hashes(a) == before
    assert _pth(b) == ["epoch_3.pth", "epoch_4.pth"]  # the copies count: max_keep_ckpts holds


def test_a_moved_work_dir_keeps_rotating(tmp_path):
    a, c = tmp_path / "A", tmp_path / "C"
    Runner(**_cfg(a)).train()
    shutil.move(a, c)
    Runner(**_cfg(c, max_epochs=4, resume="auto")).train()
    assert _pth(c) == ["epoch_3.pth", "epoch_4.pth"]


def test_a_checkpoint_of_the_old_absolute_format_deletes_nothing(tmp_path):
    """Checkpoints written before names were relative held absolute paths: ignored."""
    a, b = tmp_path / "A", tmp_path / "B"
    Runner(**_cfg(a)).train()
    _edit_hook_state(a / "epoch_2.pth", kept=[str(a / "epoch_1.pth"), str(a / "epoch_2.pth")])
    shutil.copytree(a, b)
    before = file_hashes(a)
    Runner(**_cfg(b, max_epochs=3, resume="auto")).train()
    assert file_hashes(a) == before


# ---------------------------------------------------------------------------------- the pointer
def _newer_run_elsewhere(tmp_path):
    other = tmp_path / "other"
    Runner(**_cfg(other, max_epochs=3)).train()
    return other / "epoch_3.pth"


@pytest.mark.parametrize("pointer", ["outside", "garbage", "dangling", "climbing"])
def test_an_untrusted_pointer_still_resumes_from_the_work_dirs_newest(tmp_path, pointer):
    work = tmp_path / "work"
    Runner(**_cfg(work)).train()
    content = {
        "outside": str(_newer_run_elsewhere(tmp_path)).encode(),
        "garbage": b"\xff\xfe\x00epoch\x80",
        "dangling": b"epoch_9.pth",
        "climbing": b"../other/epoch_3.pth",
    }[pointer]
    (work / "last_checkpoint").write_bytes(content)
    runner = Runner(**_cfg(work, max_epochs=3, resume="auto"))
    runner.train()
    assert runner._resume_path == str(work / "epoch_2.pth")
    if pointer in ("outside", "garbage"):
        assert "resume: ignoring" in _log_text(work)


# ---------------------------------------------------------------------------------- preemption leftovers
class StopAt(Hook):
    """Sends SIGTERM to this process before iteration ``at`` (1-based)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            import signal

            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("max_keep", [2, -1])
def test_a_preemption_checkpoint_goes_once_the_next_regular_one_is_in_place(tmp_path, max_keep):
    work = tmp_path / "work"
    cfg = _cfg(work, max_epochs=3, checkpoint=dict(max_keep_ckpts=max_keep), custom_hooks=[StopAt(3)])
    with pytest.raises(TrainingInterrupted):
        Runner(**cfg).train()
    assert _pth(work) == ["epoch_1.pth", "iter_3.pth"]  # a mid-epoch stand-in, not counted
    Runner(**_cfg(work, max_epochs=3, checkpoint=dict(max_keep_ckpts=max_keep), resume="auto")).train()
    assert _pth(work) == (["epoch_2.pth", "epoch_3.pth"] if max_keep == 2 else ["epoch_1.pth", "epoch_2.pth", "epoch_3.pth"])
    assert "(superseded preemption checkpoint)" in _log_text(work)


# ---------------------------------------------------------------------------------- out_dir
def test_out_dir_is_the_runs_own_folder_for_rotation_and_resume(tmp_path):
    work, out = tmp_path / "work", tmp_path / "store"
    Runner(**_cfg(work, checkpoint=dict(out_dir=str(out)))).train()
    assert _pth(out / "work") == ["epoch_1.pth", "epoch_2.pth"]
    runner = Runner(**_cfg(work, max_epochs=3, checkpoint=dict(out_dir=str(out)), resume="auto"))
    runner.train()
    assert runner._resume_path == str(out / "work" / "epoch_2.pth")
    assert _pth(out / "work") == ["epoch_2.pth", "epoch_3.pth"]


# ---------------------------------------------------------------------------------- the lock
class TrainAgain(Hook):
    """Starts a second run in the same work dir while the first one trains."""

    def __init__(self, cfg: dict) -> None:
        self.cfg, self.error = cfg, None

    def before_train_epoch(self, runner):
        if self.error is None:
            try:
                Runner(**self.cfg).train()
            except WorkDirLockedError as error:
                self.error = error


def test_a_second_train_in_the_same_work_dir_stops_at_once(tmp_path):
    work = tmp_path / "work"
    second = TrainAgain(_cfg(work))
    Runner(**_cfg(work, custom_hooks=[second])).train()
    assert second.error is not None
    message = str(second.error)
    assert str(work) in message and f"pid {os.getpid()}" in message and "--work-dir" in message
    # The lock is released when training ends: the dir can be trained in again.
    Runner(**_cfg(work, max_epochs=3, resume="auto")).train()
    assert _pth(work) == ["epoch_2.pth", "epoch_3.pth"]


def test_val_and_test_neither_take_nor_check_the_lock(tmp_path):
    from minirunner.checkpoint import WorkDirLock

    work = tmp_path / "work"
    cfg = _with_validation(_cfg(work))
    Runner(**cfg).train()
    holder = WorkDirLock(str(work))
    holder.acquire()
    try:
        cfg.update(test_dataloader=cfg["val_dataloader"], test_cfg=dict(), test_evaluator=dict(type="TrustTestRisingMetric"))
        runner = Runner(**cfg, load_from=str(work / "epoch_2.pth"))
        assert "score" in runner.val() and "score" in runner.test()
        with pytest.raises(WorkDirLockedError):
            runner.train()
    finally:
        holder.release()


# ---------------------------------------------------------------------------------- bad paths, weights
@pytest.mark.parametrize("key", ["load_from", "resume"])
def test_missing_checkpoint_paths_are_config_errors_before_building(tmp_path, key):
    work = tmp_path / "work"
    with pytest.raises(ConfigError, match=rf"{key}: checkpoint not found: .*nope\.pth"):
        Runner(**_cfg(work, **{key: str(tmp_path / "nope.pth")}))
    with pytest.raises(ConfigError, match=rf"{key}: .* is a directory"):
        Runner(**_cfg(work, **{key: str(tmp_path)}))
    with pytest.raises(ConfigError, match=r"URL.*Download it first"):
        Runner(**_cfg(work, **{key: "https://example.com/epoch_1.pth"}))
    assert not work.exists()  # nothing was created: no empty log folder either


def test_a_config_error_leaves_no_log_folder(tmp_path):
    work = tmp_path / "work"
    with pytest.raises(ConfigError):
        Runner(**_cfg(work, model=dict(type="NoSuchModel")))
    assert not work.exists()


def test_load_from_skips_tensors_of_another_shape_with_a_warning(tmp_path, caplog):
    work = tmp_path / "work"
    Runner(**_cfg(work, max_epochs=1)).train()
    wider = _cfg(tmp_path / "wider", max_epochs=1, load_from=str(work / "epoch_1.pth"))
    wider["model"] = dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=3)
    runner = Runner(**wider)
    saved = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]
    with caplog.at_level(logging.WARNING, logger="minirunner"):
        runner.load_checkpoint(str(work / "epoch_1.pth"))
    model = runner.model.state_dict()
    skipped = [key for key in saved if saved[key].shape != model[key].shape]
    assert skipped  # the last layer's weight and bias
    message = next(r.getMessage() for r in caplog.records if "shape differs" in r.getMessage())
    for key in skipped:
        assert key in message
    for key in saved:
        if key not in skipped:
            assert torch.equal(model[key], saved[key])


def test_a_top_level_key_typo_is_a_config_error_before_anything_is_written(tmp_path):
    from minirunner.config import Config

    cfg = Config(_cfg(tmp_path / "work", max_epochs=1))
    cfg["custom_hook"] = []
    with pytest.raises(ConfigError, match="'custom_hook'.*Did you mean 'custom_hooks'"):
        Runner.from_cfg(cfg)
    assert not (tmp_path / "work").exists()
def test_branching_into_a_used_dir_spares_the_other_runs_files_of_the_same_name(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    Runner(**_cfg(a)).train()
    Runner(**_cfg(b, max_epochs=1, randomness=dict(seed=1))).train()  # another run's epoch_1.pth
    others = file_hashes(b)["epoch_1.pth"]
    # A's state names epoch_1.pth and epoch_2.pth; B's epoch_1.pth is not A's run's file.
    Runner(**_cfg(b, max_epochs=5, resume=str(a / "epoch_2.pth"))).train()
    assert file_hashes(b)["epoch_1.pth"] == others
    assert _pth(b) == ["epoch_1.pth", "epoch_4.pth", "epoch_5.pth"]
