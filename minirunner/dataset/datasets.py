"""Built-in datasets: synthetic classification data and the embedded 8x8 digits."""

from __future__ import annotations

import functools
import gzip
import io
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from minirunner.registry import DATASETS
from minirunner.utils import ConfigError, did_you_mean

DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.pt.gz"
_DIGITS_KEYS = ("images", "labels", "train_indices", "val_indices")


@DATASETS.register_module()
class SyntheticClassification(Dataset):
    """Gaussian clusters, one per class: a deterministic, learnable toy problem.

    Each class has a random centre in ``num_features`` dimensions (drawn with scale 1);
    a sample is its class centre plus Gaussian noise of standard deviation ``noise``.
    Everything is drawn from a generator seeded with ``seed``, so the same arguments give
    the same data whatever the global RNG state is.

    Args:
        num_samples: number of samples.
        num_features: size of each sample's ``inputs`` (a float32 vector).
        num_classes: number of classes; labels are drawn uniformly.
        seed: seed of the generator the data is drawn from.
        noise: standard deviation of the noise around the class centres.

    Each item is ``dict(inputs=<float32 (num_features,)>, data_samples=<int64 label>)``.

    Example:
        >>> data = SyntheticClassification(num_samples=4, num_features=3, num_classes=2)
        >>> data[0]['inputs'].shape, data[0]['data_samples'].dtype
        (torch.Size([3]), torch.int64)
    """

    def __init__(
        self,
        num_samples: int = 1024,
        num_features: int = 32,
        num_classes: int = 10,
        seed: int = 0,
        noise: float = 1.0,
    ) -> None:
        for key, value in (
            ("num_samples", num_samples), ("num_features", num_features),
            ("num_classes", num_classes),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive int, got {value!r}", key=key)
        generator = torch.Generator().manual_seed(seed)
        centres = torch.randn(num_classes, num_features, generator=generator)
        self.labels = torch.randint(num_classes, (num_samples,), generator=generator)
        noise_values = torch.randn(num_samples, num_features, generator=generator)
        self.inputs = centres[self.labels] + noise * noise_values
        self.num_classes = num_classes

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(inputs=self.inputs[index], data_samples=self.labels[index])


@functools.lru_cache(maxsize=4)
def load_digits_file(path: str | None = None) -> dict[str, Any]:
    """Read the digits payload written by ``tools/make_digits_data.py`` (cached).

    Args:
        path: the ``.pt.gz`` file; None reads the copy embedded in the package.

    Returns:
        a dict with ``images`` (uint8, ``(1797, 8, 8)``, values 0..16), ``labels`` (uint8),
        ``train_indices`` and ``val_indices`` (int64), ``source`` and ``license``.
        Treat the tensors as read-only: they are shared between callers.
    """
    file = Path(path) if path is not None else DIGITS_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"the digits data file {file} does not exist; reinstall minirunner (the file "
            "ships with the package) or regenerate it with tools/make_digits_data.py"
        )
    with gzip.open(file, "rb") as compressed:
        raw = compressed.read()
    # weights_only: the file holds tensors, strings and ints only, and must never be able
    # to run code; it also keeps NumPy out of the picture.
    payload = torch.load(io.BytesIO(raw), weights_only=True)
    missing = [key for key in _DIGITS_KEYS if key not in payload]
    if missing:
        raise ValueError(f"{file} is not a digits data file: it lacks {missing}")
    return payload


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """The 8x8 handwritten digits (1,797 images, 10 classes), embedded in the package.

    The data is the copy of the UCI "Optical Recognition of Handwritten Digits" test set
    that scikit-learn ships (CC BY 4.0); ``tools/make_digits_data.py`` regenerates it. The
    train/val split is fixed and stratified: 1,438 training and 359 validation images.

    Each item is ``dict(inputs=<float32 (1, 8, 8) in [0, 1]>, data_samples=<int64 label>)``:
    pixel counts 0..16 are divided by 16. The whole split lives in memory as one tensor,
    so loading in the main process (``num_workers=0``) is the fastest choice.

    Args:
        split: ``'train'`` or ``'val'``.
        data_root: a folder holding another ``digits.pt.gz`` to read instead of the
            embedded copy; None uses the embedded one.

    Example:
        >>> data = DigitsDataset('val')
        >>> len(data), data[0]['inputs'].shape
        (359, torch.Size([1, 8, 8]))
    """

    SPLITS = ("train", "val")
    metainfo = dict(classes=tuple(str(digit) for digit in range(10)))

    def __init__(self, split: str = "train", data_root: str | None = None) -> None:
        if split not in self.SPLITS:
            raise ConfigError(
                f"must be 'train' or 'val', got {split!r}.{did_you_mean(str(split), self.SPLITS)}"
                " (the digits have no separate test split; test on 'val')",
                key="split",
            )
        path = None if data_root is None else str(Path(data_root) / DIGITS_FILE.name)
        payload = load_digits_file(path)
        indices = payload[f"{split}_indices"]
        self.split = split
        self.inputs = payload["images"][indices].float().div_(16).unsqueeze(1)
        self.labels = payload["labels"][indices].long()

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(inputs=self.inputs[index], data_samples=self.labels[index])
