"""Visualizer and its backends: the local JSON lines, TensorBoard, and clear errors."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from minirunner.config import Config
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from minirunner.visualization import LocalVisBackend, TensorboardVisBackend, Visualizer


def test_local_backend_writes_json_lines(tmp_path):
    backend = LocalVisBackend(str(tmp_path))
    backend.add_scalars({"loss": torch.tensor(0.5), "lr": 0.1}, step=10)
    backend.add_scalar("accuracy/top1", 97.5, step=1)
    backend.close()
    lines = (tmp_path / "vis_data" / "scalars.json").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 10, "loss": 0.5, "lr": 0.1},
        {"step": 1, "accuracy/top1": 97.5},
    ]


def test_local_backend_saves_the_config(tmp_path):
    cfg = Config(dict(lr=0.1, model=dict(type="MLPClassifier")))
    LocalVisBackend(str(tmp_path)).add_config(cfg)
    assert (tmp_path / "vis_data" / "config.py").read_text(encoding="utf-8") == cfg.pretty_text


def test_visualizer_defaults_to_the_local_backend_and_fans_out(tmp_path):
    visualizer = Visualizer(save_dir=str(tmp_path))
    assert [type(b) for b in visualizer.backends] == [LocalVisBackend]
    assert Visualizer.get_current_instance() is visualizer
    visualizer.add_scalars({"loss": 1.0}, step=3)
    visualizer.add_scalar("lr", 0.5, step=4)
    text = (tmp_path / "vis_data" / "scalars.json").read_text(encoding="utf-8")
    assert text == '{"step": 3, "loss": 1.0}\n{"step": 4, "lr": 0.5}\n'


def test_without_a_folder_nothing_is_written(tmp_path):
    visualizer = Visualizer(vis_backends=[dict(type="LocalVisBackend")], save_dir=None)
    assert visualizer.backends == []
    visualizer.add_scalars({"loss": 1.0}, step=1)  # other ranks: a no-op


def test_unknown_backend_names_its_key(tmp_path):
    cfg = dict(model=dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2),
               work_dir=str(tmp_path),
               visualizer=dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend"),
                                                                dict(type="TensorBoardVisBackend")]))
    with pytest.raises(ConfigError) as info:
        Runner(**cfg)
    assert str(info.value).startswith("visualizer.vis_backends.1.type:")
    assert "TensorboardVisBackend" in str(info.value)  # the suggestion


def test_missing_tensorboard_is_a_clear_config_error(tmp_path, monkeypatch):
    # None in sys.modules makes the import fail, whether or not tensorboard is installed.
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    cfg = dict(model=dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2),
               work_dir=str(tmp_path), visualizer=dict(vis_backends=[dict(type="TensorboardVisBackend")]))
    with pytest.raises(ConfigError) as info:
        Runner(**cfg)
    message = str(info.value)
    assert message.startswith("visualizer.vis_backends.0:")
    assert "pip install -e '.[tensorboard]'" in message
    assert "remove TensorboardVisBackend from visualizer.vis_backends" in message


@pytest.mark.multiprocess
@pytest.mark.timeout(150)
def test_importing_minirunner_does_not_import_tensorboard():
    import subprocess

    code = ("import sys, minirunner.visualization, minirunner.runner; "
            "print('tensorboard' in sys.modules, 'torch.utils.tensorboard' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


def _events(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith("events.out.tfevents")]


def test_tensorboard_event_file_is_written(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=dict(type="SyntheticClassification", num_samples=8, num_features=4,
                                           num_classes=2), sampler=dict(type="DefaultSampler"), batch_size=2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None, logger=dict(interval=2)),
        visualizer=dict(vis_backends=[dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]),
    )
    runner = Runner.from_cfg(Config(cfg))
    runner.train()  # after_run closes the writer, so the file is complete
    folder = os.path.join(runner.log_dir, "vis_data")
    assert len(_events(folder)) == 1
    events = EventAccumulator(folder)
    events.Reload()
    assert {"loss", "lr", "time", "data_time"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss")] == [2, 4]
    assert [e.value for e in events.Scalars("lr")] == pytest.approx([0.1, 0.1])
    # The same numbers as the local backend.
    with open(os.path.join(folder, "scalars.json"), encoding="utf-8") as handle:
        local = [json.loads(line)["loss"] for line in handle]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx(local, rel=1e-6)
    assert "config" in "".join(events.Tags()["tensors"])


def test_tensorboard_backend_reopens_after_close(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    backend = TensorboardVisBackend(str(tmp_path))
    backend.add_scalars({"loss": 1.0}, step=1)
    backend.close()
    backend.add_scalar("loss", 0.5, step=2)
    backend.close()
    assert len(_events(tmp_path / "vis_data")) >= 1


def test_local_backend_lines_are_on_disk_before_close_and_it_reopens(tmp_path):
    backend = LocalVisBackend(str(tmp_path))
    path = tmp_path / "vis_data" / "scalars.json"
    backend.add_scalars({"loss": 1.0}, step=1)
    # Flushed at once: a crash after this line keeps it.
    assert path.read_text(encoding="utf-8") == '{"step": 1, "loss": 1.0}\n'
    backend.close()
    backend.close()  # closing twice is harmless
    backend.add_scalars({"loss": 0.5}, step=2)  # appends after a close
    backend.close()
    assert [json.loads(line)["step"] for line in path.read_text(encoding="utf-8").splitlines()] == [1, 2]
