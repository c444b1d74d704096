"""Two real processes (gloo): samplers partition the data, metrics gather it back."""

from __future__ import annotations

import textwrap

import pytest
from runner_support import run_ranks

_SCRIPT = textwrap.dedent(
    """
    import sys

    import torch
    import torch.distributed as dist

    import minirunner.dist

    torch.set_num_threads(1)
    rank, store = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)


    from minirunner.dataset import DefaultSampler, build_dataloader
    from minirunner.evaluator import Evaluator

    # 9 samples, 2 ranks, round_up: each rank gets 5, sample 0 is repeated as padding.
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    preds = torch.tensor([0, 1, 0, 0, 2, 2, 1, 1, 2])  # correct: 0,1,3,5,7,8 -> 6 of 9
    dataset = [dict(inputs=preds[i], data_samples=labels[i]) for i in range(9)]

    loader = build_dataloader(
        dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2)
    )
    assert len(loader.sampler) == 5
    evaluator = Evaluator(dict(type="Accuracy"))
    for batch in loader:
        predictions = [
            dict(pred_label=p, gt_label=g) for p, g in zip(batch["inputs"], batch["data_samples"])
        ]
        evaluator.process(predictions, batch)
    metrics = evaluator.evaluate(size=9)
    assert abs(metrics["accuracy/top1"] - 600 / 9) < 1e-9, metrics

    # Without round-up the ranks hold 5 and 4 samples; the result is the same.
    loader = build_dataloader(dict(
        dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=True, seed=3, round_up=False), batch_size=2
    ))
    assert len(loader.sampler) == (5 if rank == 0 else 4)
    for batch in loader:
        predictions = [
            dict(pred_label=p, gt_label=g) for p, g in zip(batch["inputs"], batch["data_samples"])
        ]
        evaluator.process(predictions, batch)
    uneven = evaluator.evaluate(size=9)
    assert uneven == metrics, (uneven, metrics)

    # An unseeded sampler draws one seed that every rank shares.
    seed = DefaultSampler(range(4)).seed
    seeds = minirunner.dist.all_gather_object(seed)
    assert seeds[0] == seeds[1], seeds

    dist.destroy_process_group()
    print("OK", metrics)
    """
)


@pytest.mark.multiprocess
@pytest.mark.timeout(240)
def test_evaluate_over_two_processes_counts_each_sample_once(tmp_path):
    script = tmp_path / "two_rank_eval.py"
    script.write_text(_SCRIPT)
    for out in run_ranks(script, [tmp_path / "store"], world_size=2, timeout=180):
        assert "OK" in out
