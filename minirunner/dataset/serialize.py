"""The packed form of a dataset's ``data_list``: every item pickled into one ``bytes``
buffer, with an int64 tensor of end offsets.

Why: a list of dicts is thousands of Python objects whose reference counts change on every
access, so each forked dataloader worker ends up copying the pages they live on. One
``bytes`` object and one tensor are two objects, shared by the workers as they are. NumPy
is not needed.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

import torch


def pack(items: Sequence[Any]) -> tuple[bytes, torch.Tensor]:
    """Pickle ``items`` into ``(buffer, ends)``; item i is ``buffer[ends[i-1]:ends[i]]``."""
    chunks = [pickle.dumps(item, protocol=4) for item in items]
    ends = torch.tensor([len(chunk) for chunk in chunks], dtype=torch.int64).cumsum(0)
    return b"".join(chunks), ends


def unpack(buffer: bytes, ends: torch.Tensor, index: int) -> Any:
    """Item ``index`` (0 <= index < len(ends)) of a packed list."""
    start = 0 if index == 0 else int(ends[index - 1])
    return pickle.loads(memoryview(buffer)[start : int(ends[index])])


def pack_subset(buffer: bytes, ends: torch.Tensor, indices: Sequence[int]) -> tuple[bytes, torch.Tensor]:
    """The packed list of the items at ``indices`` (negative indices count from the end)."""
    view = memoryview(buffer)
    count = len(ends)
    chunks = []
    sizes = []
    for index in indices:
        if not -count <= index < count:
            raise IndexError(f"index {index} is out of range for a dataset of {count} samples")
        index %= count
        start = 0 if index == 0 else int(ends[index - 1])
        end = int(ends[index])
        chunks.append(view[start:end])
        sizes.append(end - start)
    return b"".join(chunks), torch.tensor(sizes, dtype=torch.int64).cumsum(0)
