"""ImgDataPreprocessor against torchvision's own transforms on the same batch: normalisation,
the BGR->RGB swap, padding to a size divisor and the channels-last option."""

from __future__ import annotations

import importlib

import pytest
import torch

from minirunner.model import ImgDataPreprocessor

MEAN = [125.307, 122.961, 113.8575]
STD = [51.5865, 50.847, 51.255]


@pytest.fixture
def v2(torchvision):
    # Imported here: in the default environment the conftest skips before this runs.
    return importlib.import_module("torchvision.transforms.v2")


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randint(0, 256, (4, 3, 13, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_normalisation_matches_torchvision_normalize(batch, v2):
    ours = ImgDataPreprocessor(mean=MEAN, std=STD)(dict(inputs=batch))["inputs"]
    theirs = v2.Normalize(mean=MEAN, std=STD)(batch.float())
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    # The usual torchvision recipe: scale to [0, 1], then normalise with statistics / 255.
    scaled = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([m / 255 for m in MEAN], [s / 255 for s in STD])])
    torch.testing.assert_close(ours, scaled(batch), rtol=1e-5, atol=1e-5)


def test_bgr_to_rgb_swaps_before_normalising(batch, v2):
    bgr = batch.flip(1)
    ours = ImgDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True)(dict(inputs=bgr))["inputs"]
    torch.testing.assert_close(ours, v2.Normalize(mean=MEAN, std=STD)(batch.float()), rtol=0, atol=1e-5)


def test_padding_to_a_size_divisor_matches_torchvision_pad(batch, v2):
    ours = ImgDataPreprocessor(mean=MEAN, std=STD, pad_size_divisor=8, pad_value=-1)(dict(inputs=batch))["inputs"]
    assert ours.shape == (4, 3, 16, 16)
    normalised = v2.Normalize(mean=MEAN, std=STD)(batch.float())
    theirs = v2.Pad(padding=[0, 0, 6, 3], fill=-1)(normalised)  # left, top, right, bottom
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_channels_last_changes_the_layout_not_the_values(batch):
    plain = ImgDataPreprocessor(mean=MEAN, std=STD)(dict(inputs=batch))["inputs"]
    last = ImgDataPreprocessor(mean=MEAN, std=STD, channels_last=True)(dict(inputs=batch))["inputs"]
    assert last.is_contiguous(memory_format=torch.channels_last) and not plain.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(last, plain)
