"""Batched fetch in real runs: exact mid-epoch resume, and the ranks of a gloo job."""

from __future__ import annotations

import textwrap

import pytest
import torch

from minirunner.dataset import SyntheticClassification
from minirunner.hooks import Hook
from minirunner.registry import DATASETS
from minirunner.runner import Runner
from runner_support import loader_cfg, run_ranks


@DATASETS.register_module(name="GetitemsOneByOne")
class OneByOne(SyntheticClassification):
    """The same data fetched one sample at a time (redefining a sample turns the batched fetch off)."""

    def __getitem__(self, index):
        return super().__getitem__(index)


class Crash(Exception):
    pass


class Trace(Hook):
    """Records each iteration's labels; raises after iteration ``crash_after`` (1-based)."""

    priority = "LOWEST"

    def __init__(self, crash_after: int | None = None) -> None:
        self.labels: list[torch.Tensor] = []
        self.crash_after = crash_after

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.labels.append(data_batch["data_samples"].clone())
        if runner.iter + 1 == self.crash_after:
            raise Crash


def _train(work_dir, trace: Trace, dataset: str = "SyntheticClassification", **overrides) -> Runner:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2, dropout=0.3),
        work_dir=str(work_dir),
        # 26 samples, batch 4: 7 batches per epoch, the last one short.
        train_dataloader=loader_cfg(26, 4, dataset=dataset),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(by_epoch=False, interval=4)),
        custom_hooks=[trace],
        randomness=dict(seed=11),
        log_level="WARNING",
    )
    cfg.update(overrides)
    runner = Runner(**cfg)
    runner.train()
    return runner


@pytest.mark.slow
def test_batched_fetch_trains_and_resumes_as_the_per_sample_path(tmp_path):
    batched, per_sample = Trace(), Trace()
    straight = _train(tmp_path / "batched", batched)
    reference = _train(tmp_path / "per_sample", per_sample, dataset="GetitemsOneByOne")
    assert len(batched.labels) == 14
    for got, want in zip(batched.labels, per_sample.labels, strict=True):
        assert torch.equal(got, want)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(straight.model.state_dict()[key], value), key

    # Interrupted after iteration 10, resumed from iter_8.pth: the second epoch's third batch.
    with pytest.raises(Crash):
        _train(tmp_path / "resumed", Trace(crash_after=10))
    trace = Trace()
    resumed = _train(tmp_path / "resumed", trace, resume=True)
    for got, want in zip(trace.labels, batched.labels[8:], strict=True):
        assert torch.equal(got, want)
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key


_SCRIPT = textwrap.dedent(
    """
    import sys

    import torch
    import torch.distributed as dist
    from torch.utils.data import default_collate

    import minirunner.dist
    from minirunner.dataset import SyntheticClassification, build_dataloader, collate_batched

    torch.set_num_threads(1)
    rank, store = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)

    # 11 samples over 2 ranks: 6 each, sample order[0] repeated as padding (round_up).
    dataset = SyntheticClassification(num_samples=11, num_features=3)
    loader = build_dataloader(dict(
        dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=True, seed=4), batch_size=4,
    ))
    assert loader.collate_fn is collate_batched
    seen = []
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        shares = list(loader.batch_sampler)
        batches = list(loader)
        assert len(batches) == len(shares) == 2
        for indices, batch in zip(shares, batches):
            want = default_collate([dataset[i] for i in indices])
            assert torch.equal(batch["inputs"], want["inputs"])
            assert torch.equal(batch["data_samples"], want["data_samples"])
        seen.append([i for indices in shares for i in indices])
    everyone = minirunner.dist.all_gather_object(seen)
    for epoch in (0, 1):
        first, second = everyone[0][epoch], everyone[1][epoch]
        assert len(first) == len(second) == 6
        assert set(first) | set(second) == set(range(11)), (first, second)
        assert len(set(first) & set(second)) == 1  # the one padding sample
    assert everyone[0][0] != everyone[0][1]  # reshuffled per epoch
    dist.destroy_process_group()
    print("OK")
    """
)


@pytest.mark.multiprocess
@pytest.mark.timeout(240)
def test_each_rank_fetches_its_own_share_in_batches(tmp_path):
    script = tmp_path / "getitems_ranks.py"
    script.write_text(_SCRIPT)
    for out in run_ranks(script, [tmp_path / "store"], world_size=2, timeout=180):
        assert "OK" in out
