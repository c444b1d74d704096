"""End-to-end training with each loop, validation scheduling, and val()/test() metrics."""

from __future__ import annotations

import pytest
import torch

from minirunner.dataset import SyntheticClassification
from minirunner.hooks import Hook
from minirunner.runner import EpochBasedTrainLoop, IterBasedTrainLoop, Runner
from runner_support import loader_cfg


def _data(num_samples: int = 32, batch_size: int = 8, shuffle: bool = True) -> dict:
    return loader_cfg(num_samples, batch_size, shuffle, num_features=8, num_classes=3)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3),
        work_dir=str(work_dir),
        train_dataloader=_data(),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(16, 8, shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy", topk=(1,)),
        test_dataloader=_data(16, 8, shuffle=False),
        test_cfg=dict(),
        test_evaluator=dict(type="Accuracy", topk=(1,)),
        default_hooks=dict(checkpoint=None, logger=dict(interval=1000)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


class ValRecorder(Hook):
    """Records (epoch, iter) at each validation and counts training iterations."""

    def __init__(self) -> None:
        self.val_at: list[tuple[int, int]] = []
        self.train_iters = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.train_iters += 1

    def before_val(self, runner) -> None:
        self.val_at.append((runner.epoch, runner.iter))


def _manual_accuracy(model: torch.nn.Module, num_samples: int = 16) -> float:
    data = SyntheticClassification(num_samples=num_samples, num_features=8, num_classes=3)
    model.eval()
    with torch.no_grad():
        predicted = model(data.inputs, mode="tensor").argmax(dim=1)
    return 100.0 * (predicted == data.labels).float().mean().item()


def test_epoch_based_training_end_to_end(tmp_path):
    recorder = ValRecorder()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[recorder]))
    before = [p.detach().clone() for p in runner.model.parameters()]
    model = runner.train()
    assert model is runner.model
    assert isinstance(runner.train_loop, EpochBasedTrainLoop)
    # 32 samples / batch 8 = 4 iterations per epoch, 2 epochs.
    assert recorder.train_iters == 8
    assert (runner.epoch, runner.iter, runner.max_epochs, runner.max_iters) == (2, 8, 2, 8)
    assert recorder.val_at == [(1, 4), (2, 8)]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_iter_based_training_end_to_end(tmp_path):
    recorder = ValRecorder()
    cfg = _cfg(tmp_path, custom_hooks=[recorder], train_cfg=dict(by_epoch=False, max_iters=10, val_interval=4))
    runner = Runner(**cfg)
    model = runner.train()
    assert model is runner.model
    assert isinstance(runner.train_loop, IterBasedTrainLoop)
    # 10 iterations over a 4-batch dataloader: it is re-iterated when it runs out.
    assert recorder.train_iters == 10
    assert runner.iter == 10 and runner.max_iters == 10
    # Every 4 iterations, and at the end of training.
    assert [it for _, it in recorder.val_at] == [4, 8, 10]


def test_iter_based_loop_by_type_name(tmp_path):
    recorder = ValRecorder()
    cfg = _cfg(
        tmp_path, custom_hooks=[recorder],
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=6, val_begin=3, val_interval=2),
    )
    runner = Runner(**cfg)
    runner.train()
    assert isinstance(runner.train_loop, IterBasedTrainLoop)
    assert recorder.train_iters == 6
    assert [it for _, it in recorder.val_at] == [4, 6]


@pytest.mark.parametrize(
    "train_cfg, expected_epochs",
    [
        # val_begin=2, every 2 epochs, plus the last epoch.
        (dict(max_epochs=5, val_begin=2, val_interval=2), [2, 4, 5]),
        (dict(max_epochs=4, val_begin=1, val_interval=1), [1, 2, 3, 4]),
        (dict(max_epochs=3, val_begin=4, val_interval=1), []),
        # Interval 3 at first; from epoch 4 on every epoch (the interval applies to the
        # epoch about to end: after epoch e the loop looks up e + 1).
        (dict(max_epochs=6, val_interval=3, dynamic_intervals=[(4, 1)]), [3, 4, 5, 6]),
        (dict(max_epochs=7, val_interval=1, dynamic_intervals=[(3, 2)]), [1, 2, 4, 6, 7]),
    ],
)
def test_epoch_validation_schedule(tmp_path, train_cfg, expected_epochs):
    recorder = ValRecorder()
    cfg = _cfg(tmp_path, custom_hooks=[recorder], train_cfg=dict(by_epoch=True, **train_cfg),
               train_dataloader=_data(8, 8))
    Runner(**cfg).train()
    assert [epoch for epoch, _ in recorder.val_at] == expected_epochs


@pytest.mark.parametrize(
    "train_cfg, expected_iters",
    [
        (dict(max_iters=9, val_begin=3, val_interval=3), [3, 6, 9]),
        (dict(max_iters=7, val_begin=5, val_interval=2), [6, 7]),
        (dict(max_iters=10, val_interval=4, dynamic_intervals=[(6, 2)]), [4, 6, 8, 10]),
    ],
)
def test_iter_validation_schedule(tmp_path, train_cfg, expected_iters):
    recorder = ValRecorder()
    cfg = _cfg(tmp_path, custom_hooks=[recorder], train_cfg=dict(by_epoch=False, **train_cfg),
               train_dataloader=_data(8, 4))
    Runner(**cfg).train()
    assert [it for _, it in recorder.val_at] == expected_iters


def test_no_validation_without_val_group(tmp_path):
    recorder = ValRecorder()
    cfg = _cfg(tmp_path, custom_hooks=[recorder], val_dataloader=None, val_cfg=None, val_evaluator=None)
    runner = Runner(**cfg)
    runner.train()
    assert recorder.val_at == [] and recorder.train_iters == 8
    with pytest.raises(RuntimeError, match="val"):
        runner.val()


def test_val_and_test_return_accuracy(tmp_path):
    runner = Runner(**_cfg(tmp_path, train_cfg=dict(max_epochs=3)))
    runner.train()
    expected = _manual_accuracy(runner.model)
    val_metrics = runner.val()
    test_metrics = runner.test()
    assert set(val_metrics) == {"accuracy/top1"} and set(test_metrics) == {"accuracy/top1"}
    assert val_metrics["accuracy/top1"] == pytest.approx(expected)
    assert test_metrics["accuracy/top1"] == pytest.approx(expected)


def test_val_on_fresh_runner_with_topk(tmp_path):
    cfg = _cfg(tmp_path, val_evaluator=dict(type="Accuracy", topk=(1, 3)))
    runner = Runner(**cfg)
    metrics = runner.val()
    assert metrics["accuracy/top1"] == pytest.approx(_manual_accuracy(runner.model))
    # Three classes: the true class is always among the top 3.
    assert metrics["accuracy/top3"] == pytest.approx(100.0)


def test_stop_training_flag_ends_the_run(tmp_path):
    class StopAfterThree(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter == 2:
                runner.train_loop.stop_training = True

    recorder = ValRecorder()
    cfg = _cfg(tmp_path, custom_hooks=[StopAfterThree(), recorder], train_cfg=dict(by_epoch=False, max_iters=20))
    runner = Runner(**cfg)
    runner.train()
    assert runner.iter == 3 and recorder.train_iters == 3


def test_stop_training_in_epoch_loop_finishes_the_epoch(tmp_path):
    class StopAfterFirstEpoch(Hook):
        def after_train_epoch(self, runner):
            runner.train_loop.stop_training = True

    recorder = ValRecorder()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[StopAfterFirstEpoch(), recorder], train_cfg=dict(max_epochs=5)))
    runner.train()
    assert runner.epoch == 1 and recorder.train_iters == 4


def test_fp16_validation_runs_under_autocast(tmp_path):
    seen = []

    class AutocastProbe(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.is_autocast_enabled("cpu"))
            return x

    runner = Runner(**_cfg(tmp_path, val_cfg=dict(fp16=True)))
    reference = runner.val()
    runner.model.net.append(AutocastProbe())
    metrics = runner.val()
    assert seen and all(seen)
    assert metrics["accuracy/top1"] == pytest.approx(reference["accuracy/top1"], abs=100 / 16 + 1e-6)


def test_runner_properties(tmp_path):
    from minirunner.logging import MessageHub

    runner = Runner(**_cfg(tmp_path, experiment_name="exp"))
    assert (runner.rank, runner.world_size, runner.seed) == (0, 1, 0)
    assert runner.work_dir == str(tmp_path)
    assert runner.experiment_name == "exp"
    assert isinstance(runner.message_hub, MessageHub)
    assert MessageHub.get_current_instance() is runner.message_hub
    assert runner.logger.name == "minirunner"
    hooks = runner.hooks
    hooks.clear()  # a copy: the runner's own list is untouched
    assert len(runner.hooks) == 6  # the seven defaults less the checkpoint hook, removed in _cfg
    assert runner.train_dataloader.batch_size == 8
    runner.train()
    assert runner.param_schedulers == []
    assert runner.optim_wrapper.param_groups[0]["lr"] == 0.1


def test_iter_based_loop_reshuffles_each_pass(tmp_path):
    seen = []

    class Inputs(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            seen.append(data_batch["inputs"].clone())

    cfg = _cfg(tmp_path, custom_hooks=[Inputs()], train_cfg=dict(by_epoch=False, max_iters=10, val_interval=100),
               randomness=dict(seed=3))
    Runner(**cfg).train()
    data = SyntheticClassification(num_samples=32, num_features=8, num_classes=3)
    expected = []
    # DefaultSampler: pass p is shuffled with seed + p; 4 batches of 8 per pass.
    for p in range(3):
        order = torch.randperm(32, generator=torch.Generator().manual_seed(3 + p))
        expected += [data.inputs[order[i : i + 8]] for i in range(0, 32, 8)]
    assert len(seen) == 10
    for got, want in zip(seen, expected):
        assert torch.equal(got, want)


def test_iter_based_loop_with_an_iterable_dataset(tmp_path):
    from torch.utils.data import DataLoader, IterableDataset

    class Stream(IterableDataset):
        """Endless samples and no length, the natural input of an iteration-based run."""

        def __iter__(self):
            generator = torch.Generator().manual_seed(0)
            while True:
                x = torch.randn(8, generator=generator)
                yield dict(inputs=x, data_samples=torch.tensor(int(x[0] > 0)))

    recorder = ValRecorder()
    cfg = _cfg(tmp_path, train_dataloader=DataLoader(Stream(), batch_size=4), custom_hooks=[recorder],
               train_cfg=dict(by_epoch=False, max_iters=6, val_interval=3))
    Runner(**cfg).train()
    assert recorder.train_iters == 6
    assert [it for _, it in recorder.val_at] == [3, 6]
