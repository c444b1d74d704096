"""`RunnerTestCase`: a ``unittest.TestCase`` for testing hooks, loops and other runner
extensions, as MMEngine's ``mmengine.testing.RunnerTestCase``.

Each test gets a temporary work dir and two ready configs built on small toy classes that
the case registers: ``self.epoch_based_cfg`` (2 epochs of 4 iterations, validation every
epoch) and ``self.iter_based_cfg`` (12 iterations, a checkpoint at the end).

Example::

    class TestMyHook(RunnerTestCase):
        def test_my_hook(self):
            cfg = copy.deepcopy(self.epoch_based_cfg)
            cfg.custom_hooks = [dict(type='MyHook')]
            runner = self.build_runner(cfg)
            runner.train()
            ...
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from typing import Any
from unittest import TestCase

import torch
from torch import nn
from torch.utils.data import Dataset

from minirunner.config import Config
from minirunner.evaluator import BaseMetric
from minirunner.model import BaseModel
from minirunner.registry import DATASETS, METRICS, MODELS
from minirunner.runner import Runner


class ToyModel(BaseModel):
    """Two linear layers, 2 -> 2 -> 1; the loss is the sum of (label - output)."""

    def __init__(self, data_preprocessor: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.linear1 = nn.Linear(2, 2)
        self.linear2 = nn.Linear(2, 1)

    def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
        """``'tensor'`` and ``'predict'`` return the outputs, ``'loss'`` ``dict(loss=...)``."""
        if isinstance(inputs, list):
            inputs = torch.stack(inputs)
        outputs = self.linear2(self.linear1(inputs))
        if mode == "loss":
            labels = torch.stack(data_samples) if isinstance(data_samples, list) else data_samples
            return dict(loss=(labels - outputs).sum())
        return outputs


class ToyDataset(Dataset):
    """12 samples: 2 random features (drawn once, when the module is imported), label 1."""

    METAINFO: dict = dict()
    data = torch.randn(12, 2)
    label = torch.ones(12)

    @property
    def metainfo(self) -> dict:
        """The dataset's meta information (empty)."""
        return self.METAINFO

    def __len__(self) -> int:
        return self.data.size(0)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.data[index], data_samples=self.label[index])


class ToyMetric(BaseMetric):
    """Reports ``acc=1`` whatever the predictions."""

    def __init__(self, collect_device: str = "cpu", dummy_metrics: Any = None) -> None:
        super().__init__(collect_device=collect_device)
        self.dummy_metrics = dummy_metrics

    def process(self, data_batch: Any, predictions: Any) -> None:
        """Record one result per batch."""
        self.results.append({"acc": 1})

    def compute_metrics(self, results: list) -> dict:
        """``{'acc': 1}``."""
        return dict(acc=1)


_TOYS = ((MODELS, ToyModel), (METRICS, ToyMetric), (DATASETS, ToyDataset))


def _loader(sampler: str, shuffle: bool) -> dict:
    return dict(
        dataset=dict(type="ToyDataset"), sampler=dict(type=sampler, shuffle=shuffle), batch_size=3, num_workers=0
    )


class RunnerTestCase(TestCase):
    """A test case with a temporary work dir and the configs ``epoch_based_cfg`` and
    ``iter_based_cfg`` (fresh for each test; change them freely)."""

    # Environment variables setup_dist_env() exports (the port moves on at each call).
    dist_cfg = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=29600, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")

    def setUp(self) -> None:
        self.temp_dir = tempfile.TemporaryDirectory()
        # force=True: another test module may have registered classes of the same names;
        # tearDown removes ours again.
        for registry, cls in _TOYS:
            registry.register_module(module=cls, force=True)
        self.epoch_based_cfg = Config(
            dict(
                work_dir=self.temp_dir.name,
                model=dict(type="ToyModel"),
                train_dataloader=_loader("DefaultSampler", True),
                val_dataloader=_loader("DefaultSampler", False),
                val_evaluator=[dict(type="ToyMetric")],
                test_dataloader=_loader("DefaultSampler", False),
                test_evaluator=[dict(type="ToyMetric")],
                optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
                train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
                val_cfg=dict(),
                test_cfg=dict(),
                default_hooks=dict(logger=dict(type="LoggerHook", interval=1)),
                custom_hooks=[],
                env_cfg=dict(dist_cfg=dict(backend="nccl")),
                experiment_name="test1",
            )
        )
        self.iter_based_cfg: Config = copy.deepcopy(self.epoch_based_cfg)
        self.iter_based_cfg.train_dataloader = _loader("InfiniteSampler", True)
        self.iter_based_cfg.log_processor = dict(by_epoch=False)
        self.iter_based_cfg.train_cfg = dict(by_epoch=False, max_iters=12)
        self.iter_based_cfg.default_hooks = dict(
            logger=dict(type="LoggerHook", interval=1),
            checkpoint=dict(type="CheckpointHook", interval=12, by_epoch=False),
        )

    def tearDown(self) -> None:
        _close_log_files()
        _forget_named_instances()
        for registry, cls in _TOYS:
            if registry.module_dict.get(cls.__name__) is cls:
                registry.module_dict.pop(cls.__name__)
        self.temp_dir.cleanup()

    def build_runner(self, cfg: Config) -> Runner:
        """A Runner from ``cfg``, under a new :attr:`experiment_name`."""
        cfg.experiment_name = self.experiment_name
        return Runner.from_cfg(cfg)

    @property
    def experiment_name(self) -> str:
        """A name no other runner of this process has: the test's name and the time in ns."""
        return f"{self._testMethodName}_{time.time_ns()}"

    def setup_dist_env(self) -> None:
        """Export ``MASTER_ADDR``, ``MASTER_PORT`` (one higher at each call), ``RANK``,
        ``WORLD_SIZE`` and ``LOCAL_RANK`` for a one-process process group."""
        self.dist_cfg["MASTER_PORT"] += 1
        os.environ["MASTER_PORT"] = str(self.dist_cfg["MASTER_PORT"])
        for key in ("MASTER_ADDR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ[key] = self.dist_cfg[key]

    def clear_work_dir(self) -> None:
        """Empty the temporary work dir (its log files are closed first)."""
        _close_log_files()
        for name in os.listdir(self.temp_dir.name):
            path = os.path.join(self.temp_dir.name, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def _close_log_files() -> None:
    # Open log files would keep the temporary dir from being deleted on Windows, and a
    # later runner would write into a dir that no longer exists.
    loggers = [logging.getLogger("minirunner"), logging.getLogger()]
    loggers += [item for item in logging.root.manager.loggerDict.values() if isinstance(item, logging.Logger)]
    for logger in loggers:
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                logger.removeHandler(handler)
                handler.close()


def _forget_named_instances() -> None:
    """Drop the named process-wide instances (message hubs, loggers, visualizers) that the
    test's runners made, as MMEngine's RunnerTestCase does."""
    from minirunner import logging as mr_logging

    for owner in (getattr(mr_logging, "MessageHub", None), getattr(mr_logging, "MMLogger", None)):
        instances = getattr(owner, "_instance_dict", None)
        if isinstance(instances, dict):
            instances.clear()
