"""`InstanceData`: data fields that all describe the same N instances (boxes, labels,
scores), indexed and concatenated together."""

from __future__ import annotations

import itertools
from collections.abc import Sized
from typing import Any, Union

import torch

from .base_data_element import BaseDataElement

IndexType = Union[str, slice, int, list, torch.LongTensor, torch.BoolTensor]


def _is_bool_index(item: torch.Tensor) -> bool:
    return item.dtype is torch.bool


def _take(value: Any, positions: list[int]) -> Any:
    """Select ``positions`` from a list, tuple, str or an object with ``cat``."""
    # slice(i, None, len) picks exactly element i, negative i included, keeping the type.
    parts = [value[slice(index, None, len(value))] for index in positions] or [value[:0]]
    if isinstance(value, (str, list, tuple)):
        result = parts[0]
        for part in parts[1:]:
            result = result + part
        return result
    return value.cat(parts)


class InstanceData(BaseDataElement):
    """A :class:`BaseDataElement` whose data fields all have the same length (one entry
    per instance).

    Data values must be sized (tensors, lists, strings, objects with ``__len__``); setting
    one whose length differs from the others raises ``AssertionError``. Indexing returns a
    new ``InstanceData`` with the same metainfo: an int keeps the dimension (a length-1
    result), a slice, a list of ints, a long tensor or a bool mask (of length ``len(self)``)
    select along the first dimension; a string returns that field. Fields that are neither
    tensors nor lists/tuples/strings must have a ``cat`` method to be indexed by tensors.

    Example:
        >>> data = InstanceData(metainfo=dict(img_shape=(8, 8)))
        >>> data.scores = torch.tensor([0.9, 0.2, 0.6])
        >>> data['labels'] = torch.tensor([1, 0, 2])
        >>> len(data), data[data.scores > 0.5].labels.tolist(), len(data[0])
        (3, [1, 2], 1)
        >>> InstanceData.cat([data, data]).labels.tolist()
        [1, 0, 2, 1, 0, 2]
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_metainfo_fields", "_data_fields"):
            super().__setattr__(name, value)
            return
        assert isinstance(value, Sized), f"{name} must have a length (__len__), got {type(value).__name__}"
        if len(self) > 0:
            assert len(value) == len(self), (
                f"the length of {name} ({len(value)}) is not the length of this InstanceData "
                f"({len(self)})"
            )
        super().__setattr__(name, value)

    __setitem__ = __setattr__

    def __getitem__(self, item: IndexType) -> Any:
        if isinstance(item, str):
            return getattr(self, item)
        assert isinstance(item, (slice, int, list, torch.Tensor)) and not isinstance(item, bool), (
            f"InstanceData is indexed by a str, int, slice, list or tensor, got {type(item).__name__}"
        )
        if isinstance(item, list):
            item = torch.tensor(item, dtype=torch.bool if item and all(isinstance(i, bool) for i in item) else torch.long)
        if isinstance(item, int):
            if item >= len(self) or item < -len(self):
                raise IndexError(f"index {item} is out of range for {len(self)} instances")
            # A slice of one element, so every field keeps its first dimension.
            item = slice(item, None, len(self))
        new_data = type(self)(metainfo=self.metainfo)
        if isinstance(item, torch.Tensor):
            assert item.dim() == 1, "only 1-D tensors index InstanceData (along the first dimension)"
            if _is_bool_index(item):
                assert len(item) == len(self), (
                    f"the bool mask has length {len(item)} but there are {len(self)} instances"
                )
                positions = torch.nonzero(item).view(-1).tolist()
            else:
                positions = item.tolist()
            for key, value in self.items():
                if isinstance(value, torch.Tensor):
                    new_data[key] = value[item.to(value.device)]
                elif isinstance(value, (str, list, tuple)) or (
                    hasattr(value, "__getitem__") and hasattr(value, "cat")
                ):
                    new_data[key] = _take(value, positions)
                else:
                    raise ValueError(
                        f"the field {key!r} is a {type(value).__name__}, which has no `cat` "
                        "method, so it cannot be indexed with a tensor"
                    )
        else:
            for key, value in self.items():
                new_data[key] = value[item]
        return new_data

    @staticmethod
    def cat(instances_list: list["InstanceData"]) -> "InstanceData":
        """Concatenate instances that have exactly the same fields (metainfo from the first).

        Tensors are joined with ``torch.cat``, lists/tuples/strings with ``+``, other values
        with their own ``cat``. A list of one element returns that element.
        """
        assert all(isinstance(item, InstanceData) for item in instances_list), (
            "cat needs a list of InstanceData"
        )
        assert len(instances_list) > 0, "cat needs at least one InstanceData"
        if len(instances_list) == 1:
            return instances_list[0]
        key_lists = [item.all_keys() for item in instances_list]
        assert len({len(keys) for keys in key_lists}) == 1 and len(
            set(itertools.chain(*key_lists))
        ) == len(key_lists[0]), "every InstanceData given to cat must have the same fields"
        first = instances_list[0]
        new_data = type(first)(metainfo=first.metainfo)
        for key in first.keys():
            values = [item[key] for item in instances_list]
            head = values[0]
            if isinstance(head, torch.Tensor):
                joined = torch.cat(values, dim=0)
            elif isinstance(head, (str, list, tuple)):
                joined = head[:]
                for value in values[1:]:
                    joined = joined + value
            elif hasattr(head, "cat"):
                joined = head.cat(values)
            else:
                raise ValueError(f"the field {key!r} is a {type(head).__name__}, which has no `cat` method")
            new_data[key] = joined
        return new_data

    def __len__(self) -> int:
        """The number of instances (0 before any data field is set)."""
        if self._data_fields:
            return len(self.values()[0])
        return 0
