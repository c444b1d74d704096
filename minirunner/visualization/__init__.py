"""Where scalars go besides the log: a local JSON-lines file by default; TensorBoard, MLflow
and Weights & Biases on request (their packages are imported only when such a backend is built)."""

from .base_vis_backend import BaseVisBackend
from .mlflow_backend import MLflowVisBackend
from .vis_backend import LocalVisBackend, TensorboardVisBackend
from .visualizer import Visualizer
from .wandb_backend import WandbVisBackend

__all__ = [
    "BaseVisBackend", "LocalVisBackend", "MLflowVisBackend", "TensorboardVisBackend", "Visualizer", "WandbVisBackend",
]
