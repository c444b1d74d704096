"""Dataset wrappers: ``ConcatDataset``, ``RepeatDataset`` and ``ClassBalancedDataset``,
registered in ``DATASETS`` so configs can nest dataset configs inside them.

Unlike the reference, any dataset (an object with ``__getitem__`` and ``__len__``) may be wrapped, not only a
:class:`BaseDataset`: ``full_init`` is called when the dataset has one, and a dataset
without ``metainfo`` counts as having an empty one.
"""

from __future__ import annotations

import bisect
import copy
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import ConcatDataset as TorchConcatDataset
from torch.utils.data import Dataset

from minirunner.logging import print_log
from minirunner.registry import DATASETS, config_key
from minirunner.utils import ConfigError

from .base_dataset import force_full_init
from .errors import DatasetTypeError


def _build(dataset: Any, key: str) -> Dataset:
    if isinstance(dataset, Mapping):
        with config_key(key):
            return DATASETS.build(dataset)
    if isinstance(dataset, Dataset) or (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        return dataset
    raise DatasetTypeError(
        f"must be a dataset config dict or a dataset, got {type(dataset).__name__}", key=key
    )


def _metainfo(dataset: Any) -> dict:
    return copy.deepcopy(dict(getattr(dataset, "metainfo", None) or {}))


def _full_init(dataset: Any) -> None:
    if hasattr(dataset, "full_init"):
        dataset.full_init()


def _no_subset(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name} has no get_subset/get_subset_: a subset of a wrapper is ambiguous. Take the "
        f"subset of the wrapped dataset (or set its `indices`), then wrap it in {name}."
    )


class _Wrapper:
    """What the three wrappers share: metainfo, lazy init, the subset refusal."""

    _fully_initialized: bool = False
    _metainfo: dict

    @property
    def metainfo(self) -> dict:
        """A copy of the meta information (of the first/wrapped dataset)."""
        return copy.deepcopy(self._metainfo)

    def _ensure_init(self) -> None:
        if not self._fully_initialized:
            print_log(
                "call full_init() before using a lazily initialised dataset wrapper: it is faster",
                logger="current", level=logging.WARNING,
            )
            self.full_init()  # type: ignore[attr-defined]

    def get_subset_(self, indices: int | Sequence[int]) -> None:
        """Not supported (see the error message)."""
        raise _no_subset(type(self).__name__)

    def get_subset(self, indices: int | Sequence[int]) -> Any:
        """Not supported (see the error message)."""
        raise _no_subset(type(self).__name__)


@DATASETS.register_module()
class ConcatDataset(_Wrapper, TorchConcatDataset):
    """Several datasets one after another.

    Args:
        datasets: datasets or dataset configs (built from ``DATASETS``).
        lazy_init: do not initialise the datasets yet.
        ignore_keys: metainfo keys that may differ between the datasets; every other key
            must be present in all of them with equal values (``ValueError`` otherwise,
            ``TypeError`` for values of different types). ``metainfo`` is the first's.

    Example:
        >>> data = ConcatDataset([dict(type='SyntheticClassification', num_samples=3),
        ...                       dict(type='SyntheticClassification', num_samples=2)])
        >>> len(data)
        5
    """

    def __init__(
        self,
        datasets: Sequence[Any],
        lazy_init: bool = False,
        ignore_keys: str | list[str] | None = None,
    ) -> None:
        self.datasets = [_build(dataset, f"datasets[{i}]") for i, dataset in enumerate(datasets)]
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        if ignore_keys is None:
            self.ignore_keys: list[str] = []
        elif isinstance(ignore_keys, str):
            self.ignore_keys = [ignore_keys]
        elif isinstance(ignore_keys, list):
            self.ignore_keys = ignore_keys
        else:
            raise DatasetTypeError(
                f"must be a str or a list of str, got {type(ignore_keys).__name__}", key="ignore_keys"
            )
        metainfos = [_metainfo(dataset) for dataset in self.datasets]
        self._metainfo = metainfos[0]
        keys = set().union(*(meta.keys() for meta in metainfos))
        for number, meta in enumerate(metainfos, 1):
            for key in sorted(keys - set(self.ignore_keys)):
                if key not in meta:
                    raise ValueError(
                        f"the metainfo key {key!r} is missing from dataset {number}; add it or "
                        "list it in ignore_keys"
                    )
                if key not in self._metainfo:
                    raise ValueError(
                        f"the metainfo key {key!r} is missing from dataset 1; add it or list it "
                        "in ignore_keys"
                    )
                if type(meta[key]) is not type(self._metainfo[key]):
                    raise DatasetTypeError(
                        f"metainfo {key!r} of dataset {number} is a {type(meta[key]).__name__}, "
                        f"the first dataset's a {type(self._metainfo[key]).__name__}",
                        key="datasets",
                    )
                if meta[key] != self._metainfo[key]:
                    raise ValueError(
                        f"metainfo {key!r} of dataset {number} ({meta[key]!r}) differs from the "
                        f"first dataset's ({self._metainfo[key]!r}); list it in ignore_keys if "
                        "that is intended"
                    )
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Initialise every dataset and compute the cumulative sizes (once)."""
        if self._fully_initialized:
            return
        for dataset in self.datasets:
            _full_init(dataset)
        TorchConcatDataset.__init__(self, self.datasets)
        self._fully_initialized = True

    @force_full_init
    def _get_ori_dataset_idx(self, idx: int) -> tuple[int, int]:
        """``(dataset index, sample index inside it)`` of global index ``idx``."""
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"index {idx} is out of range for a dataset of {len(self)} samples")
            idx += len(self)
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return dataset_idx, sample_idx

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The data info of global sample ``idx`` (from its dataset's ``get_data_info``)."""
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        return self.datasets[dataset_idx].get_data_info(sample_idx)

    @force_full_init
    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        self._ensure_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        return self.datasets[dataset_idx][sample_idx]


@DATASETS.register_module()
class RepeatDataset(_Wrapper):
    """A dataset repeated ``times`` times (fewer, longer epochs for a small dataset).

    Args:
        dataset: a dataset or a dataset config.
        times: how many times to repeat it.
        lazy_init: do not initialise the dataset yet.

    Example:
        >>> data = RepeatDataset(dict(type='SyntheticClassification', num_samples=3), times=4)
        >>> len(data)
        12
    """

    def __init__(self, dataset: Any, times: int, lazy_init: bool = False) -> None:
        self.dataset = _build(dataset, "dataset")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ConfigError(f"must be a positive int, got {times!r}", key="times")
        self.times = times
        self._metainfo = _metainfo(self.dataset)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Initialise the wrapped dataset and record its length (once)."""
        if self._fully_initialized:
            return
        _full_init(self.dataset)
        self._ori_len = len(self.dataset)
        self._fully_initialized = True

    @force_full_init
    def _get_ori_dataset_idx(self, idx: int) -> int:
        return idx % self._ori_len

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The data info of sample ``idx`` of the wrapped dataset (modulo its length)."""
        return self.dataset.get_data_info(self._get_ori_dataset_idx(idx))

    def __getitem__(self, idx: int) -> Any:
        self._ensure_init()
        return self.dataset[self._get_ori_dataset_idx(idx)]

    @force_full_init
    def __len__(self) -> int:
        return self.times * self._ori_len


@DATASETS.register_module()
class ClassBalancedDataset(_Wrapper):
    """Repeats samples of rare categories (LVIS's repeat-factor sampling).

    With ``f(c)`` the fraction of samples containing category ``c`` (from the dataset's
    ``get_cat_ids``), each category gets ``r(c) = max(1, sqrt(oversample_thr / f(c)))``
    and each sample ``r = max of r(c) over its categories`` (1 without categories); the
    sample appears ``ceil(r)`` times.

    Args:
        dataset: a dataset or a dataset config; it must implement ``get_cat_ids(idx)``.
        oversample_thr: categories rarer than this fraction of samples are oversampled.
        lazy_init: do not initialise the dataset yet.
    """

    def __init__(self, dataset: Any, oversample_thr: float, lazy_init: bool = False) -> None:
        self.dataset = _build(dataset, "dataset")
        self.oversample_thr = oversample_thr
        self._metainfo = _metainfo(self.dataset)
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Initialise the wrapped dataset and compute the repeated indices (once)."""
        if self._fully_initialized:
            return
        _full_init(self.dataset)
        factors = self._get_repeat_factors(self.dataset, self.oversample_thr)
        self.repeat_indices = [index for index, factor in enumerate(factors) for _ in range(math.ceil(factor))]
        self._fully_initialized = True

    def _get_repeat_factors(self, dataset: Any, repeat_thr: float) -> list[float]:
        if not hasattr(dataset, "get_cat_ids"):
            raise NotImplementedError(
                f"ClassBalancedDataset needs {type(dataset).__name__}.get_cat_ids(idx)"
            )
        count = len(dataset)
        cat_ids_of = [set(dataset.get_cat_ids(idx)) for idx in range(count)]
        frequency: dict[Any, float] = defaultdict(float)
        for cat_ids in cat_ids_of:
            for cat_id in cat_ids:
                frequency[cat_id] += 1
        repeat = {cat: max(1.0, math.sqrt(repeat_thr / (n / count))) for cat, n in frequency.items()}
        return [max((repeat[cat] for cat in cat_ids), default=1.0) for cat_ids in cat_ids_of]

    @force_full_init
    def _get_ori_dataset_idx(self, idx: int) -> int:
        return self.repeat_indices[idx]

    @force_full_init
    def get_cat_ids(self, idx: int) -> list[int]:
        """The category ids of sample ``idx``."""
        return self.dataset.get_cat_ids(self._get_ori_dataset_idx(idx))

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The data info of sample ``idx``."""
        return self.dataset.get_data_info(self._get_ori_dataset_idx(idx))

    def __getitem__(self, idx: int) -> Any:
        self._ensure_init()
        return self.dataset[self._get_ori_dataset_idx(idx)]

    @force_full_init
    def __len__(self) -> int:
        return len(self.repeat_indices)
