"""Data structures passed between datasets, models and metrics: :class:`BaseDataElement`
(metainfo and data fields) and :class:`InstanceData` (fields of N instances, indexed
together). Imports only torch."""

from .base_data_element import BaseDataElement
from .instance_data import InstanceData

__all__ = ["BaseDataElement", "InstanceData"]
