"""`BaseDataElement`: the container models and metrics pass samples in, with two kinds of
fields: *metainfo* (image size, file name: set once, never indexed or moved) and *data*
(annotations and predictions, usually tensors, which ``to``/``cpu``/``detach`` convert)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

_PRIVATE = ("_metainfo_fields", "_data_fields")


def _indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class BaseDataElement:
    """Metainfo and data fields behind one attribute interface.

    Fields are attributes: ``element.bboxes = t`` adds a data field; metainfo is given as
    ``metainfo=dict(...)`` or with :meth:`set_metainfo`. A name is either metainfo or data,
    never both (setting it as the other kind raises ``AttributeError``). Subclasses may
    declare typed fields as properties whose setter calls
    ``self.set_field(value, '_name', dtype=...)``; :meth:`keys` then lists ``name``.

    Args:
        metainfo: meta information such as ``img_shape``; its values are stored as given.
        **kwargs: data fields.

    Example:
        >>> sample = BaseDataElement(metainfo=dict(img_shape=(8, 8)), label=torch.tensor(3))
        >>> sample.img_shape, sample.keys(), sample.metainfo_keys()
        ((8, 8), ['label'], ['img_shape'])
        >>> 'label' in sample, sample.get('score', 0.0)
        (True, 0.0)
    """

    def __init__(self, *, metainfo: dict | None = None, **kwargs: Any) -> None:
        self._metainfo_fields: set[str] = set()
        self._data_fields: set[str] = set()
        if metainfo is not None:
            self.set_metainfo(metainfo=metainfo)
        if kwargs:
            self.set_data(kwargs)

    # ------------------------------------------------------------------ setting fields
    def set_metainfo(self, metainfo: dict) -> None:
        """Add or change metainfo fields."""
        assert isinstance(metainfo, dict), f"metainfo should be a dict, got {type(metainfo).__name__}"
        for key, value in metainfo.items():
            self.set_field(name=key, value=value, field_type="metainfo", dtype=None)

    def set_data(self, data: dict) -> None:
        """Add or change data fields (through ``setattr``, so property setters run)."""
        assert isinstance(data, dict), f"data should be a dict, got {type(data).__name__}"
        for key, value in data.items():
            setattr(self, key, value)

    def update(self, instance: "BaseDataElement") -> None:
        """Copy the metainfo and data fields of ``instance`` into this element."""
        assert isinstance(instance, BaseDataElement), (
            f"instance should be a BaseDataElement, got {type(instance).__name__}"
        )
        self.set_metainfo(dict(instance.metainfo_items()))
        self.set_data(dict(instance.items()))

    def set_field(
        self,
        value: Any,
        name: str,
        dtype: type | tuple[type, ...] | None = None,
        field_type: str = "data",
    ) -> None:
        """Set field ``name`` of kind ``field_type`` (``'data'`` or ``'metainfo'``); with
        ``dtype``, assert that ``value`` is an instance of it (for property setters)."""
        assert field_type in ("metainfo", "data"), f"field_type must be 'metainfo' or 'data', got {field_type!r}"
        if dtype is not None:
            assert isinstance(value, dtype), f"{name} should be a {dtype} but got {type(value)}"
        if field_type == "metainfo":
            if name in self._data_fields:
                raise AttributeError(f"cannot set {name} as metainfo: it is already a data field")
            self._metainfo_fields.add(name)
        else:
            if name in self._metainfo_fields:
                raise AttributeError(f"cannot set {name} as data: it is already a metainfo field")
            self._data_fields.add(name)
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PRIVATE:
            if hasattr(self, name):
                raise AttributeError(f"{name} is a private attribute and cannot be changed")
            object.__setattr__(self, name, value)
        else:
            self.set_field(name=name, value=value, field_type="data", dtype=None)

    def __delattr__(self, item: str) -> None:
        if item in _PRIVATE:
            raise AttributeError(f"{item} is a private attribute and cannot be deleted")
        object.__delattr__(self, item)
        self._metainfo_fields.discard(item)
        self._data_fields.discard(item)

    __delitem__ = __delattr__

    # ------------------------------------------------------------------ dict-like access
    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key`` (metainfo or data, properties included), else ``default``."""
        return getattr(self, key, default)

    def pop(self, *args: Any) -> Any:
        """Remove field ``args[0]`` and return its value; ``args[1]`` is the default when
        the field does not exist, else ``KeyError``."""
        assert 1 <= len(args) <= 2, "pop takes a key and an optional default"
        name = args[0]
        for fields in (self._metainfo_fields, self._data_fields):
            if name in fields:
                fields.remove(name)
                return self.__dict__.pop(*args)
        if len(args) == 2:
            return args[1]
        raise KeyError(f"{name} is not contained in metainfo or data")

    def __contains__(self, item: str) -> bool:
        return item in self._data_fields or item in self._metainfo_fields

    def keys(self) -> list[str]:
        """Names of the data fields; a property ``x`` stored as ``_x`` is listed as ``x``."""
        cls = type(self)
        hidden = {"_" + key for key in self._data_fields if isinstance(getattr(cls, key, None), property)}
        return [key for key in self._data_fields if key not in hidden]

    def metainfo_keys(self) -> list[str]:
        """Names of the metainfo fields."""
        return list(self._metainfo_fields)

    def values(self) -> list[Any]:
        """Values of the data fields, in :meth:`keys` order."""
        return [getattr(self, key) for key in self.keys()]

    def metainfo_values(self) -> list[Any]:
        """Values of the metainfo fields."""
        return [getattr(self, key) for key in self.metainfo_keys()]

    def all_keys(self) -> list[str]:
        """Metainfo names, then data names."""
        return self.metainfo_keys() + self.keys()

    def all_values(self) -> list[Any]:
        """Metainfo values, then data values."""
        return self.metainfo_values() + self.values()

    def items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of each data field."""
        for key in self.keys():
            yield key, getattr(self, key)

    def metainfo_items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of each metainfo field."""
        for key in self.metainfo_keys():
            yield key, getattr(self, key)

    def all_items(self) -> Iterator[tuple[str, Any]]:
        """``(name, value)`` of every field, metainfo first."""
        for key in self.all_keys():
            yield key, getattr(self, key)

    @property
    def metainfo(self) -> dict:
        """The metainfo fields as a new dict."""
        return dict(self.metainfo_items())

    # ------------------------------------------------------------------ copies
    def new(self, *, metainfo: dict | None = None, **kwargs: Any) -> "BaseDataElement":
        """An element of the same type with this one's metainfo (or ``metainfo``) and data
        (or ``kwargs``); the values themselves are shared, not copied."""
        element = type(self)()
        element.set_metainfo(dict(self.metainfo_items()) if metainfo is None else metainfo)
        element.set_data(kwargs if kwargs else dict(self.items()))
        return element

    def clone(self) -> "BaseDataElement":
        """An element of the same type with the same metainfo and data fields."""
        element = type(self)()
        element.set_metainfo(dict(self.metainfo_items()))
        element.set_data(dict(self.items()))
        return element

    def _convert(self, convert: Any, kinds: tuple[type, ...]) -> "BaseDataElement":
        element = self.new()
        for key, value in self.items():
            if isinstance(value, kinds):
                element.set_data({key: convert(value)})
        return element

    # ------------------------------------------------------------------ tensor-like
    def to(self, *args: Any, **kwargs: Any) -> "BaseDataElement":
        """A new element whose data values that have a ``to`` method were moved/cast with
        ``value.to(*args, **kwargs)``; metainfo is left alone."""
        element = self.new()
        for key, value in self.items():
            if hasattr(value, "to"):
                element.set_data({key: value.to(*args, **kwargs)})
        return element

    def cpu(self) -> "BaseDataElement":
        """A new element with every tensor (and nested element) of the data on the CPU."""
        return self._convert(lambda value: value.cpu(), (torch.Tensor, BaseDataElement))

    def cuda(self) -> "BaseDataElement":
        """A new element with every tensor (and nested element) of the data on the GPU."""
        return self._convert(lambda value: value.cuda(), (torch.Tensor, BaseDataElement))

    def detach(self) -> "BaseDataElement":
        """A new element with every tensor (and nested element) of the data detached."""
        return self._convert(lambda value: value.detach(), (torch.Tensor, BaseDataElement))

    def numpy(self) -> "BaseDataElement":
        """A new element with the data tensors as NumPy arrays (needs NumPy installed)."""
        try:
            import numpy  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "BaseDataElement.numpy() needs NumPy, which is not installed (pip install "
                "numpy); the tensors themselves work without it"
            ) from error

        def convert(value: Any) -> Any:
            return value.numpy() if isinstance(value, BaseDataElement) else value.detach().cpu().numpy()

        return self._convert(convert, (torch.Tensor, BaseDataElement))

    def to_tensor(self) -> "BaseDataElement":
        """A new element with NumPy arrays in the data turned into tensors (nothing to do
        when NumPy is not installed, as there can be no arrays then)."""
        try:
            import numpy
        except ImportError:
            return self._convert(lambda value: value.to_tensor(), (BaseDataElement,))

        def convert(value: Any) -> Any:
            return value.to_tensor() if isinstance(value, BaseDataElement) else torch.from_numpy(value)

        return self._convert(convert, (numpy.ndarray, BaseDataElement))

    def to_dict(self) -> dict:
        """Every field in a plain dict (nested elements converted too)."""
        return {
            key: value.to_dict() if isinstance(value, BaseDataElement) else value
            for key, value in self.all_items()
        }

    def __repr__(self) -> str:
        return _dump(self)


def _dump(obj: Any) -> str:
    if isinstance(obj, dict):
        return "".join(f"\n{key}: {_indent(_dump(value), 4)}" for key, value in obj.items())
    if isinstance(obj, BaseDataElement):
        text = "\n\n    META INFORMATION"
        text += _indent(_dump(dict(obj.metainfo_items())), 4)
        text += "\n\n    DATA FIELDS"
        text += _indent(_dump(dict(obj.items())), 4)
        return f"<{type(obj).__name__}({text}\n) at {hex(id(obj))}>"
    return repr(obj)
