"""What a run leaves in its work dir: the log file, the dumped config, vis_data/scalars.json."""

from __future__ import annotations

import json
import os
import re
import textwrap
import time

import pytest

from minirunner.config import Config
from minirunner.hooks import Hook
from minirunner.runner import Runner

CONFIG = textwrap.dedent(
    """
    lr = 0.2  # a helper variable, dumped like the rest
    model = dict(type='MLPClassifier', in_features=4, hidden_dims=(8,), num_classes=2)
    train_dataloader = dict(
        dataset=dict(type='SyntheticClassification', num_samples=16, num_features=4, num_classes=2),
        sampler=dict(type='DefaultSampler', shuffle=True), batch_size=4)
    val_dataloader = dict(
        dataset=dict(type='SyntheticClassification', num_samples=8, num_features=4, num_classes=2),
        sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4)
    val_evaluator = dict(type='Accuracy', topk=(1,))
    val_cfg = dict()
    train_cfg = dict(by_epoch=True, max_epochs=2)
    optim_wrapper = dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9))
    param_scheduler = dict(type='StepLR', by_epoch=True, step_size=1, gamma=0.5)
    default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=1))
    log_processor = dict(window_size=2)
    randomness = dict(seed=1)
    """
)


class LossRecorder(Hook):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.fixture
def trained(tmp_path):
    config_path = tmp_path / "tiny_outputs.py"
    config_path.write_text(CONFIG)
    cfg = Config.fromfile(str(config_path))
    cfg.work_dir = str(tmp_path / "work")
    recorder = LossRecorder()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder, cfg


def test_log_file_holds_train_and_val_lines(trained):
    runner, _, _ = trained
    assert runner.log_dir == os.path.join(runner.work_dir, runner.timestamp)
    assert re.fullmatch(r"\d{8}_\d{6}", runner.timestamp)
    log_file = os.path.join(runner.log_dir, f"{runner.timestamp}.log")
    text = open(log_file, encoding="utf-8").read()
    # 4 iterations per epoch, logged every 2.
    for epoch in (1, 2):
        for position in ("2/4", "4/4"):
            line = next(line for line in text.splitlines() if f"Epoch(train)  [{epoch}][{position}]" in line)
            for key in ("lr:", "loss:", "time:", "data_time:", "eta:"):
                assert key in line
        assert re.search(rf"Epoch\(val\) \[{epoch}\]\[2/2\]\s+accuracy/top1: \d+\.\d{{4}}", text)
    assert "saved checkpoint" in text


def test_config_dump_loads_back_equal(trained):
    runner, _, cfg = trained
    dumped = os.path.join(runner.work_dir, "tiny_outputs.py")
    assert os.path.isfile(dumped)
    reloaded = Config.fromfile(dumped)
    assert reloaded.to_dict() == cfg.to_dict()
    assert reloaded.lr == 0.2 and reloaded.optim_wrapper.optimizer.lr == 0.2


def test_scalars_json(trained):
    runner, recorder, _ = trained
    path = os.path.join(runner.log_dir, "vis_data", "scalars.json")
    records = [json.loads(line) for line in open(path, encoding="utf-8")]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "accuracy/top1" in r]
    assert len(train) + len(val) == len(records)
    assert [r["step"] for r in train] == [2, 4, 6, 8]
    for record in train:
        assert {"step", "loss", "lr", "time", "data_time"} <= set(record)
        assert not any(key.startswith("train/") for key in record)
        # window_size=2: the mean of the last two iterations' losses, computed here.
        step = record["step"]
        assert record["loss"] == pytest.approx(sum(recorder.losses[step - 2 : step]) / 2, rel=1e-6)
        assert record["time"] >= record["data_time"] >= 0
    # StepLR by epoch: 0.2 in epoch 1, 0.1 in epoch 2.
    assert [r["lr"] for r in train] == pytest.approx([0.2, 0.2, 0.1, 0.1])
    # Validation after each epoch, logged at the epoch number.
    assert [r["step"] for r in val] == [1, 2]
    assert all(set(r) == {"step", "iter", "accuracy/top1"} for r in val)
    assert 0 <= val[-1]["accuracy/top1"] <= 100


def test_nothing_written_outside_the_work_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config_path = tmp_path / "cfgs" / "placed.py"
    config_path.parent.mkdir()
    config_path.write_text(CONFIG)
    cfg = Config.fromfile(str(config_path))
    cfg.work_dir = "out"
    Runner.from_cfg(cfg).train()
    assert sorted(os.listdir(tmp_path)) == ["cfgs", "out"]
    top = set(os.listdir(tmp_path / "out"))
    timestamps = {name for name in top if re.fullmatch(r"\d{8}_\d{6}", name)}
    assert len(timestamps) == 1
    assert top - timestamps == {"epoch_1.pth", "epoch_2.pth", "last_checkpoint", "placed.py", ".minirunner.lock"}


def test_a_run_started_in_the_same_second_gets_its_own_log_folder(tmp_path, monkeypatch, trained):
    first, _, cfg = trained
    first_log = os.path.join(first.log_dir, f"{first.timestamp}.log")
    with open(first_log) as f:
        before = f.read()
    # Every later run starts "in the same second" as the first one.
    real_strftime = time.strftime
    monkeypatch.setattr(time, "strftime", lambda fmt, t=None: first.timestamp if fmt == "%Y%m%d_%H%M%S" else real_strftime(fmt, t))
    later = [Runner.from_cfg(cfg) for _ in range(2)]
    for runner in later:
        runner.train()
    assert [r.timestamp for r in later] == [first.timestamp] * 2
    assert [r.log_dir for r in later] == [first.log_dir + "_2", first.log_dir + "_3"]
    with open(first_log) as f:
        assert f.read() == before
    for runner in later:
        assert os.path.isfile(os.path.join(runner.log_dir, "vis_data", "scalars.json"))
