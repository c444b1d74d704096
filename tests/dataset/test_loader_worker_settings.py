"""Dataloader worker settings: prefetch_factor and persistent_workers defaults, and the
per-sample seeds that make a sample's random draws independent of the worker loading it."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from minirunner.dataset import build_dataloader
from minirunner.dataset.worker_init import seed_sample
from minirunner.registry import config_key
from minirunner.utils import ConfigError


class DrawPerSample(Dataset):
    """Item i: ``[i, a draw from torch's RNG after seed_sample(i)]``, as a random transform draws."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> torch.Tensor:
        seed_sample(index)
        return torch.tensor([float(index), torch.rand(()).item()])


def _loader(seed: int | None = 5, **options):
    cfg = dict(dataset=DrawPerSample(), sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2)
    return build_dataloader({**cfg, **options}, seed=seed)


def test_defaults_with_and_without_workers():
    without = _loader()
    assert (without.num_workers, without.prefetch_factor, without.persistent_workers) == (0, None, False)
    with_workers = _loader(num_workers=2)
    assert (with_workers.prefetch_factor, with_workers.persistent_workers) == (2, False)
    assert "seed_samples" not in with_workers.worker_init_fn.keywords  # on by default
    custom = _loader(num_workers=1, prefetch_factor=4, persistent_workers=True)
    assert (custom.prefetch_factor, custom.persistent_workers) == (4, True)
    assert custom.worker_init_fn.keywords["seed_samples"] is False


@pytest.mark.parametrize(
    ("options", "text"),
    [
        (dict(prefetch_factor=2), "num_workers is 0"),
        (dict(num_workers=1, prefetch_factor=0), "positive int"),
        (dict(num_workers=1, prefetch_factor=True), "positive int"),
    ],
)
def test_bad_prefetch_factor_names_the_key(options, text):
    with pytest.raises(ConfigError) as info, config_key("train_dataloader"):
        _loader(**options)
    assert info.value.key == "train_dataloader.prefetch_factor" and text in str(info.value)


def test_seed_sample_does_nothing_in_the_main_process():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    seed_sample(1)
    assert torch.equal(torch.rand(3), expected)


def _draws(loader) -> dict[int, float]:
    return {int(i): v for batch in loader for i, v in batch.tolist()}


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_in_workers_a_samples_draw_depends_on_seed_epoch_and_index():
    one = _draws(_loader(num_workers=1))
    two = _draws(_loader(num_workers=2))
    assert one == two and sorted(one) == list(range(8))
    assert _draws(_loader(num_workers=2)) == two  # reproducible from the seed
    assert set(_draws(_loader(seed=6, num_workers=2)).values()).isdisjoint(two.values())
    epoch_1 = _loader(num_workers=2)
    init = epoch_1.worker_init_fn
    epoch_1.worker_init_fn = type(init)(init.func, *init.args, **{**init.keywords, "epoch": 1})
    assert set(_draws(epoch_1).values()).isdisjoint(two.values())


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_persistent_workers_keep_drawing_new_values_in_later_epochs():
    loader = _loader(num_workers=2, persistent_workers=True)
    first, second = _draws(loader), _draws(loader)
    assert set(first.values()).isdisjoint(second.values())
