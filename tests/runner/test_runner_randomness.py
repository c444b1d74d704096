"""randomness=dict(seed, deterministic): the same seed gives bit-identical training."""

from __future__ import annotations

import random

import pytest
import torch

from minirunner.runner import Runner


def _cfg(work_dir, seed, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3, dropout=0.3),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type="SyntheticClassification", num_samples=24, num_features=8, num_classes=3),
            sampler=dict(type="DefaultSampler", shuffle=True),
            batch_size=4,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=None, logger=dict(interval=1000)),
        randomness=dict(seed=seed),
    )
    cfg.update(overrides)
    return cfg


def _train(work_dir, seed, **overrides) -> dict[str, torch.Tensor]:
    runner = Runner(**_cfg(work_dir, seed, **overrides))
    assert runner.seed == seed
    return {k: v.clone() for k, v in runner.train().state_dict().items()}


def test_same_seed_gives_identical_weights(tmp_path):
    first = _train(tmp_path / "a", 123)
    # Disturb every global generator in between: the runner must reseed them all.
    torch.rand(100)
    random.random()
    second = _train(tmp_path / "b", 123)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_different_seeds_give_different_weights(tmp_path):
    first = _train(tmp_path / "a", 1)
    second = _train(tmp_path / "b", 2)
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_same_init_but_different_shuffle_and_dropout_differ(tmp_path):
    # Same seed, so the same initial weights, but the sampler seed differs: training diverges,
    # which shows the sampler really takes the run's seed.
    first = _train(tmp_path / "a", 5)
    second_runner = Runner(**_cfg(tmp_path / "b", 5))
    second_runner.train_dataloader.sampler.seed += 1
    second = second_runner.train().state_dict()
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_seed_none_draws_one(tmp_path):
    runner = Runner(**_cfg(tmp_path, None))
    assert isinstance(runner.seed, int) and 0 <= runner.seed < 2**31


def test_deterministic_flag(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    try:
        Runner(**_cfg(tmp_path, 3, randomness=dict(seed=3, deterministic=True)))
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.parametrize("seed", [0, 7])
def test_seed_is_recorded_in_checkpoint_meta(tmp_path, seed):
    runner = Runner(**_cfg(tmp_path, seed, default_hooks=dict(logger=dict(interval=1000)),
                           train_cfg=dict(by_epoch=True, max_epochs=1)))
    runner.train()
    checkpoint = torch.load(tmp_path / "epoch_1.pth", weights_only=True)
    assert checkpoint["meta"]["seed"] == seed
