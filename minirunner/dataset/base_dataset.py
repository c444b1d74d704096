"""`BaseDataset`: the reference's dataset base class. An annotation file (JSON, holding
``metainfo`` and ``data_list``) is read into a list of dicts, filtered, optionally cut to a
subset, packed into one buffer, and each sample is ``pipeline(data_info)``."""

from __future__ import annotations

import copy
import functools
import os.path as osp
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from minirunner.utils import ConfigError

from . import serialize
from .annotation import list_from_file, load_annotation_file
from .compose import Compose
from .errors import DatasetTypeError


def force_full_init(method: Callable) -> Callable:
    """Decorate a dataset method so that it calls ``full_init()`` first when the dataset
    was built with ``lazy_init=True`` and is not initialised yet (with a warning)."""

    @functools.wraps(method)
    def wrapper(obj: Any, *args: Any, **kwargs: Any) -> Any:
        if not hasattr(obj, "full_init"):
            raise AttributeError(f"{type(obj).__name__} has no full_init method")
        if not getattr(obj, "_fully_initialized", False):
            warnings.warn(
                f"{type(obj).__name__} is not fully initialised (lazy_init=True); calling "
                "full_init() now. Call it yourself before handing the dataset to a dataloader.",
                stacklevel=2,
            )
            obj.full_init()
            obj._fully_initialized = True
        return method(obj, *args, **kwargs)

    return wrapper


class BaseDataset(Dataset):
    """Base class of annotation-file datasets, with the reference's arguments and methods.

    The annotation file is JSON (or YAML with PyYAML)::

        {"metainfo": {"classes": ["cat", "dog"]},
         "data_list": [{"img_path": "a.jpg", "label": 0}, ...]}

    Args:
        ann_file: the annotation file, relative to ``data_root`` unless absolute.
        metainfo: meta information; wins over the class attribute ``METAINFO``, which wins
            over the annotation file's ``metainfo``. A string value naming an existing file
            is replaced by the file's lines (a class-name list).
        data_root: the folder ``ann_file`` and relative ``data_prefix`` paths are joined to.
        data_prefix: ``{key: folder}``; :meth:`parse_data_info` joins each folder with the
            ``key`` entry of every raw data info.
        filter_cfg: settings for :meth:`filter_data` (subclasses read it).
        indices: keep only these samples: an int keeps the first n, a list those indices.
        serialize_data: pack the data list into one buffer (see ``minirunner.dataset.
            serialize``) so that dataloader workers share it instead of copying it.
        pipeline: transforms (``TRANSFORMS`` configs or callables) applied to each sample.
        test_mode: a pipeline returning None is an error instead of a reason to refetch.
        lazy_init: do not load the annotations yet (``metainfo`` is still available);
            :meth:`full_init` or the first access loads them.
        max_refetch: how many other random samples to try when the pipeline returns None.

    Subclasses override :meth:`load_data_list` (other annotation formats),
    :meth:`parse_data_info`, :meth:`filter_data` and :meth:`get_cat_ids`.

    Example:
        >>> class ToyDataset(BaseDataset):
        ...     METAINFO = dict(classes=('a', 'b'))
        ...     def load_data_list(self):
        ...         return [dict(x=i, label=i % 2) for i in range(4)]
        >>> data = ToyDataset(pipeline=[lambda info: dict(inputs=info['x'], label=info['label'])])
        >>> len(data), data[3], data.metainfo['classes']
        (4, {'inputs': 3, 'label': 1}, ('a', 'b'))
    """

    METAINFO: dict = dict()
    _fully_initialized: bool = False

    def __init__(
        self,
        ann_file: str | None = "",
        metainfo: Mapping | None = None,
        data_root: str | None = "",
        data_prefix: Mapping[str, str | None] = dict(img_path=""),  # noqa: B006 - never mutated
        filter_cfg: Mapping | None = None,
        indices: int | Sequence[int] | None = None,
        serialize_data: bool = True,
        pipeline: Sequence[Mapping | Callable] = [],  # noqa: B006 - never mutated
        test_mode: bool = False,
        lazy_init: bool = False,
        max_refetch: int = 1000,
    ) -> None:
        self.ann_file = ann_file or ""
        self.data_root = data_root or ""
        if not isinstance(data_prefix, Mapping):
            raise DatasetTypeError(
                f"must be a dict such as dict(img_path='images/'), got {type(data_prefix).__name__}",
                key="data_prefix",
            )
        self.data_prefix = {key: "" if value is None else value for key, value in data_prefix.items()}
        self.filter_cfg = copy.deepcopy(filter_cfg)
        self._indices = indices
        self.serialize_data = serialize_data
        self.test_mode = test_mode
        self.max_refetch = max_refetch
        self.data_list: list[dict] = []
        self.data_bytes: bytes = b""
        self.data_address: torch.Tensor = torch.zeros(0, dtype=torch.int64)
        self._metainfo = self._load_metainfo(copy.deepcopy(metainfo))
        self._join_prefix()
        self.pipeline = Compose(pipeline)
        if not lazy_init:
            self.full_init()

    # ------------------------------------------------------------------ loading
    def full_init(self) -> None:
        """Load the annotations, filter them, apply ``indices`` and pack them (once)."""
        if self._fully_initialized:
            return
        self.data_list = self.load_data_list()
        self.data_list = self.filter_data()
        if self._indices is not None:
            self.data_list = self._get_unserialized_subset(self._indices)
        if self.serialize_data:
            self.data_bytes, self.data_address = serialize.pack(self.data_list)
            self.data_list = []
        self._fully_initialized = True

    def load_data_list(self) -> list[dict]:
        """Read ``ann_file`` (``metainfo`` + ``data_list``) and parse every raw item.

        The file's ``metainfo`` only fills keys that ``METAINFO`` and the ``metainfo``
        argument left unset. :meth:`parse_data_info` may return a dict or a list of dicts
        (several samples from one raw item).
        """
        annotations = load_annotation_file(self.ann_file)
        if not isinstance(annotations, dict):
            raise DatasetTypeError(
                f"{self.ann_file} must hold a dict with 'metainfo' and 'data_list', got "
                f"{type(annotations).__name__}", key="ann_file",
            )
        if "data_list" not in annotations or "metainfo" not in annotations:
            raise ConfigError(
                f"{self.ann_file} must have the keys 'metainfo' and 'data_list' (has "
                f"{sorted(annotations)}); override load_data_list() for other formats",
                key="ann_file",
            )
        for key, value in annotations["metainfo"].items():
            self._metainfo.setdefault(key, value)
        data_list: list[dict] = []
        for raw in annotations["data_list"]:
            parsed = self.parse_data_info(raw)
            if isinstance(parsed, dict):
                data_list.append(parsed)
            elif isinstance(parsed, list) and all(isinstance(item, dict) for item in parsed):
                data_list.extend(parsed)
            else:
                raise TypeError(
                    f"parse_data_info must return a dict or a list of dicts, got {type(parsed).__name__}"
                )
        return data_list

    def parse_data_info(self, raw_data_info: dict) -> dict | list[dict]:
        """Join each ``data_prefix`` folder with the entry of the same key (override to
        parse other layouts)."""
        for key, prefix in self.data_prefix.items():
            if key not in raw_data_info:
                raise KeyError(
                    f"the data info {raw_data_info} has no key '{key}' named in data_prefix; "
                    "check data_prefix or override parse_data_info()"
                )
            raw_data_info[key] = osp.join(prefix, raw_data_info[key])
        return raw_data_info

    def filter_data(self) -> list[dict]:
        """The data list to keep; all of it by default (subclasses read ``filter_cfg``)."""
        return self.data_list

    def get_cat_ids(self, idx: int) -> list[int]:
        """The category ids in sample ``idx``; ``ClassBalancedDataset`` needs it."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_cat_ids()")

    @classmethod
    def _load_metainfo(cls, metainfo: Mapping | None = None) -> dict:
        merged = copy.deepcopy(cls.METAINFO)
        if metainfo is None:
            return merged
        if not isinstance(metainfo, Mapping):
            raise DatasetTypeError(f"must be a dict, got {type(metainfo).__name__}", key="metainfo")
        for key, value in metainfo.items():
            # A string naming an existing file is a list of names, one a line.
            merged[key] = list_from_file(value) if isinstance(value, str) and osp.isfile(value) else value
        return merged

    def _join_prefix(self) -> None:
        if self.ann_file and not osp.isabs(self.ann_file):
            self.ann_file = osp.join(self.data_root, self.ann_file)
        for key, prefix in self.data_prefix.items():
            if not isinstance(prefix, str):
                raise DatasetTypeError(
                    f"must be a folder path string, got {type(prefix).__name__}", key=f"data_prefix.{key}"
                )
            if not osp.isabs(prefix):
                self.data_prefix[key] = osp.join(self.data_root, prefix)

    @property
    def metainfo(self) -> dict:
        """A copy of the merged meta information."""
        return copy.deepcopy(self._metainfo)

    # ------------------------------------------------------------------ access
    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """A copy of sample ``idx``'s data info, with ``sample_idx`` (non-negative) added."""
        if self.serialize_data:
            count = len(self.data_address)
            if not -count <= idx < count:
                raise IndexError(f"index {idx} is out of range for a dataset of {count} samples")
            data_info = serialize.unpack(self.data_bytes, self.data_address, idx % count)
        else:
            data_info = copy.deepcopy(self.data_list[idx])
        data_info["sample_idx"] = idx if idx >= 0 else len(self) + idx
        return data_info

    def prepare_data(self, idx: int) -> Any:
        """``pipeline(get_data_info(idx))``."""
        return self.pipeline(self.get_data_info(idx))

    def __getitem__(self, idx: int) -> Any:
        """Sample ``idx`` after the pipeline. In training, a None from the pipeline is
        retried with random other samples up to ``max_refetch`` times; in ``test_mode``
        it is an error."""
        if not self._fully_initialized:
            warnings.warn("call full_init() before using a lazily initialised dataset: it is faster", stacklevel=2)
            self.full_init()
        if self.test_mode:
            data = self.prepare_data(idx)
            if data is None:
                raise RuntimeError(f"the test-time pipeline returned None for sample {idx}")
            return data
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = self._rand_another()
        raise RuntimeError(
            f"no valid sample after {self.max_refetch} refetches: the pipeline returned None "
            "each time; check the data paths and the pipeline"
        )

    def _rand_another(self) -> int:
        # Python's RNG: seeded per worker by worker_init_fn, and NumPy may be absent.
        return random.randrange(len(self))

    @force_full_init
    def __len__(self) -> int:
        return len(self.data_address) if self.serialize_data else len(self.data_list)

    # ------------------------------------------------------------------ subsets
    def _subset_indices(self, indices: int | Sequence[int]) -> list[int]:
        count = len(self)
        if isinstance(indices, bool) or not isinstance(indices, (int, Sequence)):
            raise DatasetTypeError(
                f"must be an int or a sequence of ints, got {type(indices).__name__}", key="indices"
            )
        if isinstance(indices, int):
            return list(range(min(indices, count))) if indices >= 0 else list(range(max(count + indices, 0), count))
        return list(indices)

    def _get_unserialized_subset(self, indices: int | Sequence[int]) -> list[dict]:
        if isinstance(indices, bool) or not isinstance(indices, (int, Sequence)):
            raise DatasetTypeError(
                f"must be an int or a sequence of ints, got {type(indices).__name__}", key="indices"
            )
        if isinstance(indices, int):
            return self.data_list[:indices] if indices >= 0 else self.data_list[indices:]
        return [self.data_list[index] for index in indices]

    @force_full_init
    def get_subset_(self, indices: int | Sequence[int]) -> None:
        """Keep only a subset, in place: ``n >= 0`` keeps the first n samples, ``n < 0``
        the last ``-n``, a sequence the samples at those indices (in that order)."""
        if self.serialize_data:
            self.data_bytes, self.data_address = serialize.pack_subset(
                self.data_bytes, self.data_address, self._subset_indices(indices)
            )
        else:
            self.data_list = self._get_unserialized_subset(indices)

    @force_full_init
    def get_subset(self, indices: int | Sequence[int]) -> "BaseDataset":
        """A new dataset holding a subset (see :meth:`get_subset_`); this one is unchanged."""
        subset = self._copy_without_annotation()
        if self.serialize_data:
            subset.data_bytes, subset.data_address = serialize.pack_subset(
                self.data_bytes, self.data_address, self._subset_indices(indices)
            )
        else:
            subset.data_list = copy.deepcopy(self._get_unserialized_subset(indices))
        return subset

    def _copy_without_annotation(self) -> "BaseDataset":
        cls = type(self)
        other = cls.__new__(cls)
        memo: dict[int, Any] = {id(self): other}
        for key, value in self.__dict__.items():
            if key in ("data_list", "data_address", "data_bytes"):
                continue
            other.__dict__[key] = copy.deepcopy(value, memo)
        other.data_list = []
        return other
