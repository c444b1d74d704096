"""Built-in datasets: synthetic classification data, the embedded 8x8 digits, and tensors of
your own (:class:`InMemoryDataset`). All of them fetch a whole batch with one indexing
operation (``__getitems__``) when the dataloader asks for one."""

from __future__ import annotations

import functools
import gzip
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from minirunner.registry import DATASETS

from .collate import FetchedBatch
from minirunner.utils import ConfigError, did_you_mean

DIGITS_FILE = Path(__file__).resolve().parent / "data" / "digits.pt.gz"
_DIGITS_KEYS = ("images", "labels", "train_indices", "val_indices")


def take_rows(tensors: Mapping[str, torch.Tensor], indices: list[int]) -> dict[str, torch.Tensor]:
    """``{name: tensor[indices]}``: the rows of every tensor, as one batch.

    The result equals ``default_collate`` of the samples ``{name: tensor[i]}``, and costs one
    ``index_select`` per tensor instead of one indexing per sample and a stack.

    Example:
        >>> take_rows(dict(x=torch.arange(6).view(3, 2)), [2, 0])['x']
        tensor([[4, 5],
                [0, 1]])
    """
    # index_select with an index tensor is the cheapest way torch offers to gather rows.
    index = torch.as_tensor(indices, dtype=torch.long)
    return {name: tensor.index_select(0, index) for name, tensor in tensors.items()}


def _fetch(dataset: Dataset, cls: type, tensors: Mapping[str, torch.Tensor], indices: list[int]) -> Any:
    """:func:`take_rows` as a :class:`FetchedBatch` (which torch's ``default_collate`` can
    still collate sample by sample, in a ``DataLoader`` built by hand), unless a subclass of ``cls`` redefines ``__getitem__``: its samples
    are then no longer plain rows, so they are fetched one by one (a list of samples, which
    ``collate_batched`` and ``default_collate`` collate as usual)."""
    if type(dataset).__getitem__ is not cls.__getitem__:
        return [dataset[index] for index in indices]
    return FetchedBatch(take_rows(tensors, indices))


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

    Each item is ``dict(inputs=<float32 (num_features,)>, data_samples=<int64 label>)``;
    ``data.__getitems__(indices)`` returns a batch of them, as ``default_collate`` would.

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

    def __getitems__(self, indices: list[int]) -> Any:
        """The samples at ``indices`` as one collated batch (the DataLoader calls this)."""
        return _fetch(self, SyntheticClassification, dict(inputs=self.inputs, data_samples=self.labels), indices)


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
    so loading in the main process (``num_workers=0``) is the fastest choice, and
    ``__getitems__`` fetches a whole batch with one indexing operation.

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

    def __getitems__(self, indices: list[int]) -> Any:
        """The samples at ``indices`` as one collated batch (the DataLoader calls this)."""
        return _fetch(self, DigitsDataset, dict(inputs=self.inputs, data_samples=self.labels), indices)


@DATASETS.register_module()
class InMemoryDataset(Dataset):
    """Your own tensors as a dataset: one field per tensor, the first dimension indexing samples.

    Item ``i`` is ``{name: tensor[i] for each field}``, e.g.
    ``dict(inputs=inputs[i], data_samples=labels[i])``, which a model's
    ``forward(inputs, data_samples, mode)`` receives batched. The DataLoader fetches a whole
    batch with one indexing operation per field (``__getitems__``), which on small samples is
    several times faster than fetching and collating them one by one.

    Args:
        data: field name -> tensor; every tensor has the same first dimension.
        file: instead of ``data``, a file written with ``torch.save(dict(inputs=..., ...), path)``;
            it is read with ``torch.load(weights_only=True)`` (tensors only, no code).
        metainfo: the dataset's meta information (``dict(classes=(...))``), kept as
            :attr:`metainfo` for hooks and metrics to read.

    Example:
        >>> data = InMemoryDataset(dict(inputs=torch.zeros(5, 3), data_samples=torch.arange(5)))
        >>> len(data), data[4]['data_samples'], data.__getitems__([1, 2]).collated['inputs'].shape
        (5, tensor(4), torch.Size([2, 3]))

    In a config: ``dataset=dict(type='InMemoryDataset', file='data/train.pt')``.
    """

    def __init__(
        self,
        data: Mapping[str, torch.Tensor] | None = None,
        file: str | None = None,
        metainfo: Mapping[str, Any] | None = None,
    ) -> None:
        if (data is None) == (file is None):
            raise ConfigError(
                "give either data (a dict of tensors) or file (a torch.save'd dict of tensors), "
                "not both or neither",
                key="data" if data is not None else "file",
            )
        key = "data"
        if file is not None:
            key = "file"
            if not Path(file).is_file():
                raise ConfigError(f"{file!r} is not a file; give the path of a torch.save'd dict", key=key)
            data = torch.load(file, weights_only=True)
        if not isinstance(data, Mapping) or not data:
            raise ConfigError(
                f"must hold a non-empty dict of field name -> tensor, got {type(data).__name__}; "
                "e.g. dict(inputs=<tensor (N, ...)>, data_samples=<tensor (N,)>)",
                key=key,
            )
        lengths = {}
        for name, value in data.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                raise ConfigError(
                    f"field {name!r} must be a tensor with a first dimension indexing the samples, "
                    f"got {type(value).__name__}",
                    key=key,
                )
            lengths[name] = value.shape[0]
        if len(set(lengths.values())) != 1:
            raise ConfigError(
                f"every field needs the same number of samples (first dimension), got {lengths}",
                key=key,
            )
        self.data = dict(data)
        self._length = next(iter(lengths.values()))
        if metainfo is not None:
            self.metainfo = dict(metainfo)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[index] for name, tensor in self.data.items()}

    def __getitems__(self, indices: list[int]) -> Any:
        """The samples at ``indices`` as one collated batch (the DataLoader calls this)."""
        return _fetch(self, InMemoryDataset, self.data, indices)
