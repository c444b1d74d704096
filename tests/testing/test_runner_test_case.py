"""RunnerTestCase: a hook test written the MMEngine way (subclass, build a runner from
self.epoch_based_cfg with a custom hook, train, assert) runs unchanged."""

from __future__ import annotations

import copy
import os

import torch

from minirunner.hooks import Hook
from minirunner.registry import DATASETS, HOOKS, METRICS, MODELS
from minirunner.testing import RunnerTestCase


@HOOKS.register_module(name="TestingCountHook")
class CountHook(Hook):
    """Counts the events a user's hook test typically asserts on."""

    def __init__(self) -> None:
        self.iters = 0
        self.epochs = 0
        self.val_metrics: list[dict] = []
        self.losses: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iters += 1
        self.losses.append(float(outputs["loss"]))

    def after_train_epoch(self, runner):
        self.epochs += 1

    def after_val_epoch(self, runner, metrics=None):
        self.val_metrics.append(dict(metrics))


class TestCountHook(RunnerTestCase):
    """What a user of MMEngine writes to test a hook."""

    def test_epoch_based(self):
        cfg = copy.deepcopy(self.epoch_based_cfg)
        cfg.custom_hooks = [dict(type="TestingCountHook")]
        runner = self.build_runner(cfg)
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, CountHook))
        # 12 samples, batch size 3: 4 iterations per epoch, 2 epochs, validation after each.
        self.assertEqual(hook.iters, 8)
        self.assertEqual(hook.epochs, 2)
        self.assertEqual(hook.val_metrics, [{"acc": 1}, {"acc": 1}])
        self.assertEqual(runner.epoch, 2)
        self.assertEqual(runner.iter, 8)
        # The runner's experiment name is the one build_runner set.
        self.assertTrue(runner.experiment_name.startswith("test_epoch_based_"))
        self.assertEqual(runner.work_dir, os.path.abspath(self.temp_dir.name))
        self.assertTrue(os.path.isfile(os.path.join(self.temp_dir.name, "epoch_2.pth")))

    def test_iter_based(self):
        cfg = copy.deepcopy(self.iter_based_cfg)
        cfg.custom_hooks = [dict(type="TestingCountHook")]
        runner = self.build_runner(cfg)
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, CountHook))
        self.assertEqual(hook.iters, 12)
        self.assertEqual(runner.iter, 12)
        # CheckpointHook(interval=12, by_epoch=False): one checkpoint, at the end.
        saved = sorted(name for name in os.listdir(self.temp_dir.name) if name.endswith(".pth"))
        self.assertEqual(saved, ["iter_12.pth"])

    def test_val_and_test(self):
        runner = self.build_runner(copy.deepcopy(self.epoch_based_cfg))
        self.assertEqual(runner.val(), {"acc": 1})
        self.assertEqual(runner.test(), {"acc": 1})

    def test_toy_model_learns(self):
        # The loss is sum(label - output): SGD pushes the outputs up, so the loss falls.
        cfg = copy.deepcopy(self.epoch_based_cfg)
        cfg.custom_hooks = [dict(type="TestingCountHook")]
        runner = self.build_runner(cfg)
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, CountHook))
        self.assertLess(hook.losses[-1], hook.losses[0])

    def test_each_test_gets_fresh_configs_and_names(self):
        self.epoch_based_cfg.train_cfg.max_epochs = 5  # changes this test's copy only
        self.assertNotEqual(self.experiment_name, self.experiment_name)  # time_ns differs
        self.assertEqual(self.iter_based_cfg.train_cfg.max_iters, 12)
        self.assertEqual(self.iter_based_cfg.log_processor, dict(by_epoch=False))
        self.assertEqual(self.iter_based_cfg.train_dataloader.sampler.type, "InfiniteSampler")

    def test_toys_are_registered_during_the_test(self):
        self.assertIsNotNone(MODELS.get("ToyModel"))
        self.assertIsNotNone(METRICS.get("ToyMetric"))
        self.assertIsNotNone(DATASETS.get("ToyDataset"))

    def test_setup_dist_env_moves_the_port_on(self):
        saved = {key: os.environ.get(key) for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
        try:
            self.setup_dist_env()
            first = int(os.environ["MASTER_PORT"])
            self.setup_dist_env()
            self.assertEqual(int(os.environ["MASTER_PORT"]), first + 1)
            self.assertEqual(os.environ["WORLD_SIZE"], "1")
            self.assertEqual(os.environ["RANK"], "0")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def test_clear_work_dir(self):
        runner = self.build_runner(copy.deepcopy(self.iter_based_cfg))
        runner.train()
        self.assertTrue(os.listdir(self.temp_dir.name))
        self.clear_work_dir()
        self.assertEqual(os.listdir(self.temp_dir.name), [])
        # A second run in the emptied dir works (the lock and logs start afresh).
        self.build_runner(copy.deepcopy(self.iter_based_cfg)).train()
        self.assertTrue(os.path.isfile(os.path.join(self.temp_dir.name, "iter_12.pth")))


def test_teardown_unregisters_the_toys_and_removes_the_dir():
    case = RunnerTestCase("setUp")
    case.setUp()
    folder = case.temp_dir.name
    assert MODELS.get("ToyModel") is not None and os.path.isdir(folder)
    case.tearDown()
    assert MODELS.get("ToyModel") is None
    assert METRICS.get("ToyMetric") is None
    assert DATASETS.get("ToyDataset") is None
    assert not os.path.exists(folder)


def test_toy_dataset_samples():
    from minirunner.testing import ToyDataset

    dataset = ToyDataset()
    assert len(dataset) == 12
    sample = dataset[3]
    assert torch.equal(sample["inputs"], ToyDataset.data[3]) and float(sample["data_samples"]) == 1.0
    assert dataset.metainfo == {}
