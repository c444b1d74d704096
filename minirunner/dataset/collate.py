"""Collate functions, registered in ``FUNCTIONS`` under the names configs use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch.utils.data import default_collate
from torch.utils.data._utils.collate import default_collate_fn_map

from minirunner.registry import FUNCTIONS
from minirunner.structures import BaseDataElement

# torch's own function, so a batch looks exactly as it would in a plain PyTorch loop.
FUNCTIONS.register_module(name="default_collate", module=default_collate)


def _keep_data_elements(batch: Sequence[BaseDataElement], *, collate_fn_map: Any = None) -> list:
    return list(batch)


# torch's documented extension point for default_collate: data elements (one per sample,
# of any size) stay a list, as in the reference, instead of raising a TypeError.
default_collate_fn_map.setdefault(BaseDataElement, _keep_data_elements)


class FetchedBatch(Sequence):
    """A batch fetched at once by a dataset's ``__getitems__``: ``collated`` holds it as
    ``default_collate`` would make it (field name -> stacked tensor), and the object still
    reads as the sequence of its samples.

    :func:`collate_batched` (the loaders ``build_dataloader`` makes) just takes
    ``collated``; any other collate function, torch's ``default_collate`` in a
    ``DataLoader`` you build yourself among them, iterates over the samples as usual.

    Example:
        >>> import torch
        >>> batch = FetchedBatch(dict(x=torch.arange(6).view(3, 2)))
        >>> len(batch), batch[1]['x'], default_collate(batch)['x'].shape
        (3, tensor([2, 3]), torch.Size([3, 2]))
    """

    __slots__ = ("collated", "_length")

    def __init__(self, collated: dict[str, Any]) -> None:
        self.collated = collated
        self._length = len(next(iter(collated.values()))) if collated else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if not -self._length <= index < self._length:
            raise IndexError(f"sample {index} of a batch of {self._length}")
        return {name: value[index] for name, value in self.collated.items()}


@FUNCTIONS.register_module()
def pseudo_collate(data_batch: Sequence[Any]) -> Any:
    """Group a list of samples by field without stacking anything.

    Dicts become a dict of lists, tuples and lists a tuple or list of lists (transposed),
    recursively; the leaves (tensors, numbers, strings, other objects) are left as they
    are, in lists. Use it for samples whose tensors differ in size; the model or its data
    preprocessor then stacks or pads them.

    Example:
        >>> pseudo_collate([dict(x=1, y=('a', 2)), dict(x=3, y=('b', 4))])
        {'x': [1, 3], 'y': (['a', 'b'], [2, 4])}
    """
    first = data_batch[0]
    if isinstance(first, Mapping):
        grouped = {key: pseudo_collate([sample[key] for sample in data_batch]) for key in first}
        return grouped if type(first) is dict else type(first)(grouped)
    if isinstance(first, (str, bytes)) or not isinstance(first, Sequence):
        return list(data_batch)
    length = len(first)
    if any(len(sample) != length for sample in data_batch):
        raise ValueError(
            "pseudo_collate needs every sample's sequences to have the same length, got "
            f"lengths {[len(sample) for sample in data_batch]}"
        )
    fields = [pseudo_collate(list(group)) for group in zip(*data_batch)]
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*fields)
    if isinstance(first, tuple):
        return tuple(fields)
    return fields


@FUNCTIONS.register_module()
def collate_batched(data: Any) -> Any:
    """The collate function for a dataset whose ``__getitems__`` returns a whole batch.

    torch's DataLoader calls ``dataset.__getitems__(indices)`` when the dataset has it and
    passes the result to the collate function. A :class:`FetchedBatch` (what the built-in
    datasets return) gives its ``collated`` dict; another batch (a dict of stacked tensors,
    say) is returned as it is; a plain list is taken to be a list of samples (torch's own wrappers,
    such as ``Subset`` over a dataset without ``__getitems__``, return one) and goes through
    ``default_collate``. :func:`~minirunner.dataset.build_dataloader` picks this function by
    itself when the config sets no ``collate_fn``.

    Example:
        >>> import torch
        >>> collate_batched(dict(x=torch.zeros(2, 3)))['x'].shape
        torch.Size([2, 3])
        >>> collate_batched([dict(x=torch.zeros(3)), dict(x=torch.ones(3))])['x'].shape
        torch.Size([2, 3])
    """
    if type(data) is FetchedBatch:
        return data.collated
    return default_collate(data) if type(data) is list else data
