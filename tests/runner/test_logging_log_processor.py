"""LogProcessor: the exact text of train/val/test lines and the smoothing numbers, on a known hub."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

import minirunner.runner.log_processor as log_processor_module
from minirunner.logging import MessageHub
from minirunner.runner import LogProcessor
from minirunner.utils import ConfigError


def fake_runner(hub: MessageHub, *, epoch=0, iter=0, max_epochs=1, train_len=113, max_iters=None,
                val_len=10, test_len=10) -> SimpleNamespace:
    return SimpleNamespace(
        message_hub=hub, epoch=epoch, iter=iter, max_epochs=max_epochs,
        max_iters=max_iters if max_iters is not None else max_epochs * train_len,
        train_dataloader=range(train_len), val_dataloader=range(val_len), test_dataloader=range(test_len),
    )


@pytest.fixture(autouse=True)
def no_cuda_memory(monkeypatch):
    # Lines are compared character by character: no memory column, even on a GPU machine.
    monkeypatch.setattr(log_processor_module, "_max_memory_mb", lambda: None)


def train_hub(n: int = 50) -> MessageHub:
    """n iterations in the order the hooks log them: lr, data_time, loss, grad_norm, time."""
    hub = MessageHub("log_processor_test")
    for i in range(n):
        hub.update_scalar("train/lr", 0.01)
        hub.update_scalar("train/data_time", 0.0011)
        hub.update_scalar("train/loss", 0.4567)
        hub.update_scalar("train/grad_norm", 1.2345)
        # 40 slow iterations, then 10 at 0.0213: the window shows 0.0213, the ETA uses all 50.
        hub.update_scalar("train/time", 0.0333 if i < 40 else 0.0213)
    return hub


def test_train_line_by_epoch_exact_text():
    hub = train_hub()
    # Epoch 1, iteration 50 of 113, 4 epochs: 452 iterations, 402 to go after this one.
    runner = fake_runner(hub, epoch=0, iter=49, max_epochs=4)
    tag, line = LogProcessor().get_log_after_iter(runner, batch_idx=49, mode="train")
    # ETA: mean time over all 50 = (40 * 0.0333 + 10 * 0.0213) / 50 = 0.0309 s; 0.0309 * 402 = 12.4 s.
    assert line == (
        "Epoch(train)  [1][ 50/113]  lr: 1.0000e-02  eta: 0:00:12  time: 0.0213  data_time: 0.0011  "
        "grad_norm: 1.2345  loss: 0.4567"
    )
    assert tag == pytest.approx({"lr": 0.01, "data_time": 0.0011, "loss": 0.4567, "grad_norm": 1.2345,
                                 "time": 0.0213})


def test_epoch_column_is_right_aligned_for_two_digit_max_epochs():
    hub = train_hub(10)
    processor = LogProcessor()
    first = processor.get_log_after_iter(fake_runner(hub, epoch=0, iter=9, max_epochs=12, train_len=10), 9, "train")[1]
    tenth = processor.get_log_after_iter(fake_runner(hub, epoch=9, iter=99, max_epochs=12, train_len=10), 9, "train")[1]
    assert first.startswith("Epoch(train)   [1][10/10]  lr:")
    assert tenth.startswith("Epoch(train)  [10][10/10]  lr:")


def test_train_line_by_iteration_exact_text():
    hub = MessageHub("log_processor_iter")
    for _ in range(10):
        hub.update_scalar("train/lr", 0.1)
        hub.update_scalar("train/data_time", 0.002)
        hub.update_scalar("train/loss", 1.5)
        hub.update_scalar("train/time", 0.05)
    runner = fake_runner(hub, iter=49, max_iters=1000)
    _, line = LogProcessor(by_epoch=False).get_log_after_iter(runner, batch_idx=49, mode="train")
    # 950 iterations left at 0.05 s: 47.5 s.
    assert line == "Iter(train) [  50/1000]  lr: 1.0000e-01  eta: 0:00:47  time: 0.0500  data_time: 0.0020  loss: 1.5000"


def test_lr_of_every_optimizer_and_memory(monkeypatch):
    monkeypatch.setattr(log_processor_module, "_max_memory_mb", lambda: 1234)
    hub = MessageHub("log_processor_gan")
    # RuntimeInfoHook's keys for an OptimWrapperDict(gen=..., disc=...) with clipping on both.
    for key, value in [("gen.lr", 0.0002), ("disc.lr", 0.0001), ("data_time", 0.001), ("loss_gen", 0.7),
                       ("loss_disc", 0.3), ("gen.grad_norm", 2.0), ("disc.grad_norm", 4.0), ("time", 0.01)]:
        hub.update_scalar(f"train/{key}", value)
    runner = fake_runner(hub, epoch=1, iter=19, max_epochs=2, train_len=10)
    tag, line = LogProcessor(num_digits=2).get_log_after_iter(runner, batch_idx=9, mode="train")
    assert line == (
        "Epoch(train)  [2][10/10]  gen.lr: 2.00e-04  disc.lr: 1.00e-04  eta: 0:00:00  time: 0.01  "
        "data_time: 0.00  memory: 1234  gen.grad_norm: 2.00  disc.grad_norm: 4.00  loss_gen: 0.70  loss_disc: 0.30"
    )
    assert tag["memory"] == 1234 and tag["gen.lr"] == 0.0002 and tag["disc.lr"] == 0.0001


def test_several_param_groups_show_base_lr():
    hub = MessageHub("log_processor_groups")
    hub.update_scalar("train/lr", 0.05)
    hub.update_scalar("train/base_lr", 0.1)
    hub.update_scalar("train/loss", 1.0)
    _, line = LogProcessor().get_log_after_iter(fake_runner(hub, train_len=4), batch_idx=0, mode="train")
    assert line == "Epoch(train)  [1][1/4]  lr: 5.0000e-02  base_lr: 1.0000e-01  loss: 1.0000"


def test_val_epoch_line_exact_text():
    hub = MessageHub("log_processor_val")
    hub.update_scalar("val/accuracy/top1", 97.22222)
    runner = fake_runner(hub, epoch=1, val_len=10)
    tag, line = LogProcessor().get_log_after_epoch(runner, batch_idx=10, mode="val")
    assert line == "Epoch(val) [1][10/10]  accuracy/top1: 97.2222"
    assert tag == {"accuracy/top1": 97.22222}


def test_val_and_test_lines_with_timings():
    hub = MessageHub("log_processor_val_times")
    for i in range(4):
        hub.update_scalar("val/data_time", 0.001 * (i + 1))
        hub.update_scalar("val/time", 0.01 * (i + 1))
    # A stale metric from the previous validation is not shown mid-epoch.
    hub.update_scalar("val/accuracy/top1", 50.0)
    processor = LogProcessor(window_size=2)
    runner = fake_runner(hub, epoch=3, val_len=8)
    _, line = processor.get_log_after_iter(runner, batch_idx=3, mode="val")
    # Window 2: time (0.03 + 0.04) / 2, data_time (0.003 + 0.004) / 2; ETA 0.035 s * 4 batches.
    assert line == "Epoch(val) [3][4/8]  eta: 0:00:00  time: 0.0350  data_time: 0.0035"
    hub.update_scalar("val/accuracy/top1", 75.5)
    tag, line = processor.get_log_after_epoch(runner, batch_idx=4, mode="val")
    # The summary averages the epoch's 4 values: time 0.025, data_time 0.0025.
    assert line == "Epoch(val) [3][8/8]  accuracy/top1: 75.5000  data_time: 0.0025  time: 0.0250"
    assert tag == {"accuracy/top1": 75.5}
    hub.update_scalar("test/accuracy/top1", 80.0)
    _, line = processor.get_log_after_epoch(fake_runner(hub, test_len=3), batch_idx=3, mode="test")
    assert line == "Epoch(test) [3/3]  accuracy/top1: 80.0000"
    _, line = LogProcessor(by_epoch=False).get_log_after_epoch(fake_runner(hub, test_len=3), batch_idx=3, mode="test")
    assert line == "Iter(test) [3/3]  accuracy/top1: 80.0000"


def _losses_two_epochs() -> tuple[MessageHub, SimpleNamespace]:
    """Epoch 1 logged losses 1..6, epoch 2 has logged 7, 8, 9 (batch_idx 2 of 6)."""
    hub = MessageHub("log_processor_smoothing")
    for value in range(1, 10):
        hub.update_scalar("train/loss", float(value))
        hub.update_scalar("train/acc", float(10 * value))  # not a mean-pattern key
    return hub, fake_runner(hub, epoch=1, iter=8, max_epochs=2, train_len=6)


@pytest.mark.parametrize(
    "window, expected",
    [
        (2, (8 + 9) / 2),
        (4, (6 + 7 + 8 + 9) / 4),
        ("epoch", (7 + 8 + 9) / 3),  # this epoch's three values
        ("global", sum(range(1, 10)) / 9),
        (100, sum(range(1, 10)) / 9),
    ],
)
def test_smoothing_windows(window, expected):
    hub, runner = _losses_two_epochs()
    tag, line = LogProcessor(window_size=window).get_log_after_iter(runner, batch_idx=2, mode="train")
    assert tag["loss"] == pytest.approx(expected)
    assert f"loss: {expected:.4f}" in line
    assert tag["acc"] == 90.0  # keys outside the mean pattern show their latest value


def test_custom_cfg_adds_and_replaces_statistics():
    hub, runner = _losses_two_epochs()
    processor = LogProcessor(
        window_size=2,
        custom_cfg=[
            dict(data_src="loss", method_name="max", window_size="global", log_name="loss_max"),
            dict(data_src="loss", method_name="min", window_size="epoch", log_name="loss_epoch_min"),
            dict(data_src="loss", method_name="mean", log_name="loss_all"),  # no window: every value
            dict(data_src="acc", method_name="mean", window_size=3),  # no log_name: replaces acc
            dict(data_src="missing", method_name="mean"),  # not logged: skipped
        ],
    )
    tag, line = processor.get_log_after_iter(runner, batch_idx=2, mode="train")
    assert tag["loss"] == pytest.approx(8.5)
    assert tag["loss_max"] == 9.0
    assert tag["loss_epoch_min"] == 7.0
    assert tag["loss_all"] == pytest.approx(5.0)
    assert tag["acc"] == pytest.approx(80.0)  # (70 + 80 + 90) / 3
    assert "missing" not in tag
    assert "loss_max: 9.0000" in line and "acc: 80.0000" in line


def test_custom_cfg_accepts_method_as_an_alias():
    hub, runner = _losses_two_epochs()
    processor = LogProcessor(custom_cfg=[dict(data_src="loss", method="current", log_name="loss_now")])
    assert processor.get_log_after_iter(runner, 2, "train")[0]["loss_now"] == 9.0


def test_log_with_hierarchy_keeps_prefixes_for_backends_only():
    hub, runner = _losses_two_epochs()
    tag, line = LogProcessor(window_size=2, log_with_hierarchy=True).get_log_after_iter(runner, 2, "train")
    assert set(tag) == {"train/loss", "train/acc"}
    assert "  loss: 8.5000" in line and "train/" not in line
    hub.update_scalar("val/accuracy/top1", 90.0)
    tag, _ = LogProcessor(log_with_hierarchy=True).get_log_after_epoch(fake_runner(hub, epoch=2), 10, "val")
    assert tag == {"val/accuracy/top1": 90.0}


@pytest.mark.parametrize(
    "kwargs, key, message",
    [
        (dict(window_size=0), "window_size", "positive int"),
        (dict(window_size="epochs"), "window_size", "'epoch' or 'global'"),
        (dict(window_size="epoch", by_epoch=False), "window_size", "needs by_epoch=True"),
        (dict(custom_cfg=[dict(data_src="loss")]), "custom_cfg.0", "'method_name'"),
        (dict(custom_cfg=[dict(data_src="loss", method_name="median")]), "custom_cfg.0.method_name",
         "unknown"),
        (dict(custom_cfg=[dict(data_src="loss", method_name="max", window_size=-1)]),
         "custom_cfg.0.window_size", "positive int"),
        (dict(by_epoch=False, custom_cfg=[dict(data_src="loss", method_name="max", window_size="epoch")]),
         "custom_cfg.0.window_size", "needs by_epoch=True"),
        (dict(custom_cfg=[dict(data_src="loss", method_name="max"), dict(data_src="loss", method_name="min")]),
         "custom_cfg.1", "two custom_cfg items write 'loss'"),
    ],
)
def test_config_errors(kwargs, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        LogProcessor(**kwargs)
    assert info.value.key == key


def test_runner_names_the_full_key(tmp_path):
    from minirunner.runner import Runner

    model = dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2)
    with pytest.raises(ConfigError) as info:
        Runner(model=model, work_dir=str(tmp_path), log_processor=dict(window_size=0))
    assert str(info.value).startswith("log_processor.window_size: window_size must be a positive int")
    with pytest.raises(ConfigError) as info:
        Runner(model=model, work_dir=str(tmp_path), train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=4, num_features=4, num_classes=2),
            sampler=dict(type="DefaultSampler"), batch_size=2), optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
            train_cfg=dict(by_epoch=False, max_iters=4), log_processor=dict(window_size="epoch"))
    assert str(info.value).startswith("log_processor.window_size: window_size 'epoch' needs by_epoch=True")


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_memory_is_the_peak_since_the_previous_line(monkeypatch):
    import torch

    monkeypatch.undo()  # the real _max_memory_mb
    block = torch.empty(64 * 1024 * 1024, dtype=torch.uint8, device="cuda")  # 64 MB
    first = log_processor_module._max_memory_mb()
    assert first is not None and first >= 64
    del block
    torch.cuda.empty_cache()
    second = log_processor_module._max_memory_mb()
    assert second < first  # the peak was reset by the first reading
    hub = train_hub(1)
    _, line = LogProcessor().get_log_after_iter(fake_runner(hub, train_len=4), 0, "train")
    assert re.search(r"  data_time: \d\.\d{4}  memory: \d+  grad_norm: ", line)
