"""Where scalars go besides the log: a local JSON-lines file by default, TensorBoard on request."""

from .vis_backend import LocalVisBackend, TensorboardVisBackend
from .visualizer import Visualizer

__all__ = ["LocalVisBackend", "TensorboardVisBackend", "Visualizer"]
