"""Where scalars go besides the log: a local JSON-lines file by default."""

from .vis_backend import LocalVisBackend
from .visualizer import Visualizer

__all__ = ["LocalVisBackend", "Visualizer"]
