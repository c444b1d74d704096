"""Evaluator and BaseMetric with MMEngine's API: process(data_samples, data_batch=None),
evaluate(size), offline_evaluate, dataset_meta reaching the metrics (also from a ValLoop),
collect_dir, data elements passed as dicts, and the DumpResults metric."""

from __future__ import annotations

import pickle

import pytest
import torch

from minirunner.evaluator import BaseMetric, DumpResults, Evaluator
from minirunner.registry import METRICS
from minirunner.utils import ConfigError


class Recorder(BaseMetric):
    """Keeps what it was given."""

    def __init__(self, prefix=None, **kwargs):
        super().__init__(prefix=prefix, **kwargs)
        self.batches = []

    def process(self, data_batch, data_samples):
        self.batches.append((data_batch, list(data_samples)))
        self.results.extend(s["value"] for s in data_samples)

    def compute_metrics(self, results):
        return dict(total=sum(results), count=len(results))


def test_process_and_evaluate():
    metric = Recorder()
    evaluator = Evaluator(metric)
    evaluator.process([dict(value=1), dict(value=2)], data_batch="batch0")
    evaluator.process(data_samples=[dict(value=3)])
    assert metric.batches[0][0] == "batch0" and metric.batches[1][0] is None
    assert evaluator.evaluate(3) == dict(total=6, count=3)
    assert metric.results == []  # cleared for the next evaluation


def test_samples_with_to_dict_are_passed_as_dicts():
    class Element:  # what a data element looks like to the evaluator
        def __init__(self, value):
            self.value = value

        def to_dict(self):
            return dict(value=self.value)

    metric = Recorder()
    Evaluator([metric]).process([Element(5), dict(value=1)])
    assert metric.batches[0][1] == [dict(value=5), dict(value=1)]


def test_offline_evaluate_in_chunks():
    metric = Recorder()
    evaluator = Evaluator(metric)
    samples = [dict(value=v) for v in range(5)]
    data = [dict(inputs=torch.tensor([float(v)]), idx=v) for v in range(5)]
    assert evaluator.offline_evaluate(samples, data, chunk_size=2) == dict(total=10, count=5)
    # 3 chunks: 2 + 2 + 1; each data chunk grouped field by field (pseudo_collate).
    assert [len(batch[1]) for batch in metric.batches] == [2, 2, 1]
    first_batch = metric.batches[0][0]
    assert first_batch["idx"] == [0, 1] and torch.equal(first_batch["inputs"][1], torch.tensor([1.0]))
    assert Evaluator(Recorder()).offline_evaluate(samples) == dict(total=10, count=5)
    with pytest.raises(ValueError, match="same length"):
        evaluator.offline_evaluate(samples, data[:3])


def test_dataset_meta_reaches_every_metric():
    first, second = Recorder(prefix="a"), Recorder(prefix="b")
    evaluator = Evaluator([first, second])
    meta = dict(classes=("cat", "dog"))
    evaluator.dataset_meta = meta
    assert evaluator.dataset_meta == meta and first.dataset_meta == meta and second.dataset_meta == meta


def test_same_metric_name_twice_is_an_error():
    evaluator = Evaluator([Recorder(), Recorder()])
    evaluator.process([dict(value=1)])
    with pytest.raises(ValueError, match="total"):
        evaluator.evaluate(1)


def test_collect_dir_only_with_cpu():
    assert Recorder(collect_dir="/tmp/x").collect_dir == "/tmp/x"
    with pytest.raises(ConfigError, match="collect_dir"):
        Recorder(collect_device="gpu", collect_dir="/tmp/x")


def test_val_loop_gives_the_dataset_metainfo_to_the_evaluator(tmp_path):
    from torch.utils.data import Dataset

    from minirunner.registry import DATASETS
    from minirunner.runner import Runner

    @DATASETS.register_module(name="EvalApiMetaDataset", force=True)
    class MetaDataset(Dataset):
        metainfo = dict(classes=("a", "b"))

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return dict(inputs=torch.ones(4) * i, data_samples=torch.tensor(i % 2))

    @METRICS.register_module(name="EvalApiMetaMetric", force=True)
    class MetaMetric(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(len(data_samples))

        def compute_metrics(self, results):
            return dict(num_classes=len(self.dataset_meta["classes"]))

    runner = Runner(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2),
        work_dir=str(tmp_path),
        val_dataloader=dict(dataset=dict(type="EvalApiMetaDataset"), sampler=dict(type="DefaultSampler", shuffle=False),
                            batch_size=2),
        val_cfg=dict(),
        val_evaluator=dict(type="EvalApiMetaMetric"),
    )
    assert runner.val() == dict(num_classes=2)
    assert runner.val_loop.evaluator.dataset_meta == dict(classes=("a", "b"))


def test_dump_results(tmp_path):
    out = tmp_path / "preds" / "results.pkl"
    metric = METRICS.build(dict(type="DumpResults", out_file_path=str(out)))
    assert isinstance(metric, DumpResults)
    evaluator = Evaluator(metric)
    evaluator.process([dict(pred=torch.tensor([1.0, 2.0])), dict(pred=torch.tensor([3.0, 4.0]))])
    evaluator.process([dict(pred=torch.tensor([5.0, 6.0]))])
    assert evaluator.evaluate(3) == {}
    with open(out, "rb") as handle:
        saved = pickle.load(handle)
    assert len(saved) == 3 and torch.equal(saved[2]["pred"], torch.tensor([5.0, 6.0]))
    with pytest.raises(ConfigError, match=".pkl"):
        DumpResults(out_file_path=str(tmp_path / "results.json"))
