"""BaseMetric.evaluate: gathering from ranks, restoring dataset order, dropping padding."""

from __future__ import annotations

import logging

import pytest
import torch

import minirunner.dist
from minirunner.dataset import DefaultSampler
from minirunner.evaluator import Accuracy, BaseMetric, collect_results
from minirunner.utils import ConfigError


class Record(BaseMetric):
    """Keeps each sample's index; compute_metrics reports the order it was given."""

    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        self.seen = list(results)
        return dict(count=len(results), total=sum(results))


def simulate_ranks(monkeypatch, rank: int, parts: list[list]) -> list:
    """Make this process rank ``rank`` whose all_gather returns ``parts``; record broadcasts."""
    broadcasts = []

    def broadcast(obj, src=0):
        broadcasts.append(obj)
        return {"from": "rank0"} if rank != 0 else obj

    monkeypatch.setattr(minirunner.dist, "get_rank", lambda: rank)
    monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: len(parts))
    monkeypatch.setattr(minirunner.dist, "all_gather_object", lambda obj: parts)
    monkeypatch.setattr(minirunner.dist, "broadcast_object", broadcast)
    return broadcasts


def _rank_shares(monkeypatch, size: int, world_size: int, round_up: bool) -> list[list[int]]:
    shares = []
    for rank in range(world_size):
        monkeypatch.setattr(minirunner.dist, "get_rank", lambda rank=rank: rank)
        monkeypatch.setattr(minirunner.dist, "get_world_size", lambda: world_size)
        shares.append(list(DefaultSampler(range(size), shuffle=False, round_up=round_up)))
    return shares


def test_two_ranks_with_padding_are_restored_to_dataset_order(monkeypatch):
    # 7 samples on 2 ranks with round_up: rank 0 has 0,2,4,6 and rank 1 has 1,3,5,0 (padding).
    shares = _rank_shares(monkeypatch, size=7, world_size=2, round_up=True)
    assert shares == [[0, 2, 4, 6], [1, 3, 5, 0]]
    simulate_ranks(monkeypatch, 0, shares)
    metric = Record()
    metric.process(None, shares[0])
    assert metric.evaluate(size=7) == dict(count=7, total=21)
    assert metric.seen == [0, 1, 2, 3, 4, 5, 6]  # the padded 0 is not counted twice


def test_uneven_ranks_without_round_up_keep_every_sample(monkeypatch):
    shares = _rank_shares(monkeypatch, size=7, world_size=3, round_up=False)
    assert shares == [[0, 3, 6], [1, 4], [2, 5]]
    simulate_ranks(monkeypatch, 0, shares)
    metric = Record()
    metric.process(None, shares[0])
    metric.evaluate(size=7)
    assert metric.seen == list(range(7))


def test_other_ranks_get_rank_zeros_result_and_skip_computing(monkeypatch):
    broadcasts = simulate_ranks(monkeypatch, 1, [[0, 2], [1, 3]])
    metric = Record()
    metric.process(None, [1, 3])
    assert metric.evaluate(size=4) == {"from": "rank0"}
    assert broadcasts == [None]
    assert not hasattr(metric, "seen")
    assert metric.results == []


def test_accuracy_over_two_simulated_ranks_equals_one_process(monkeypatch):
    scores = torch.eye(5)[[0, 1, 1, 3, 4]]  # predicted classes 0,1,1,3,4
    labels = [0, 1, 2, 3, 0]  # correct: samples 0, 1, 3 -> 60%
    samples = [dict(pred_score=s, gt_label=torch.tensor(g)) for s, g in zip(scores, labels)]
    shares = _rank_shares(monkeypatch, size=5, world_size=2, round_up=True)  # [0,2,4], [1,3,0]
    gathered = []
    for share in shares:
        metric = Accuracy()
        metric.process(None, [samples[i] for i in share])
        gathered.append(list(metric.results))
    simulate_ranks(monkeypatch, 0, gathered)
    metric = Accuracy()
    metric.results = list(gathered[0])
    # Without truncation the padded sample 0 (correct) would give 4 of 6 = 66.7%.
    assert metric.evaluate(size=5) == {"accuracy/top1": pytest.approx(60.0)}


def test_prefix_and_default_prefix():
    class Named(Record):
        default_prefix = "named"

    metric = Named()
    metric.process(None, [1, 2])
    assert metric.evaluate(2) == {"named/count": 2, "named/total": 3}
    metric = Named(prefix="other")
    metric.process(None, [1])
    assert metric.evaluate(1) == {"other/count": 1, "other/total": 1}
    metric = Record()
    metric.process(None, [5])
    assert metric.evaluate(1) == {"count": 1, "total": 5}


class OnDevice(torch.Tensor):
    """Stands in for an accelerator tensor: ``.cpu()`` returns a plain tensor."""

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).clone()


class KeepTensors(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        return dict(n=len(results))


def test_cpu_collection_moves_tensors_before_gathering(monkeypatch):
    sent = []

    def gather(obj):
        sent.append(obj)
        return [obj]

    monkeypatch.setattr(minirunner.dist, "all_gather_object", gather)
    on_device = torch.ones(1).as_subclass(OnDevice)
    metric = KeepTensors()
    metric.process(None, [dict(x=on_device), (on_device,)])
    assert metric.evaluate(2) == dict(n=2)
    assert type(sent[0][0]["x"]) is torch.Tensor and type(sent[0][1][0]) is torch.Tensor
    metric = KeepTensors(collect_device="gpu")
    metric.process(None, [on_device])
    metric.evaluate(1)
    assert type(sent[1][0]) is OnDevice


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_collection_of_cuda_results(monkeypatch):
    sent = []
    monkeypatch.setattr(minirunner.dist, "all_gather_object", lambda obj: sent.append(obj) or [obj])
    metric = KeepTensors()
    metric.process(None, [torch.ones(1, device="cuda")])
    metric.evaluate(1)
    assert sent[0][0].device.type == "cpu"


def test_empty_results_warn():
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("minirunner")
    handler = Collect()
    logger.addHandler(handler)
    try:
        assert Record().evaluate(0) == dict(count=0, total=0)
    finally:
        logger.removeHandler(handler)
    assert any("no results" in r.getMessage() and r.levelno == logging.WARNING for r in records)


def test_collect_results_in_one_process_truncates():
    assert collect_results([1, 2, 3], size=2) == [1, 2]


def test_bad_collect_device():
    with pytest.raises(ConfigError) as info:
        Record(collect_device="cuda")
    assert info.value.key == "collect_device"


def test_process_and_compute_are_abstract():
    with pytest.raises(TypeError):
        BaseMetric()
