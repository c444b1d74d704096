"""Models: the :class:`BaseModel` interface, data preprocessors, the DDP wrapper and the
example classifiers used by the bundled configs."""

from .base_model import BaseModel, build_data_preprocessor
from .classifiers import BaseClassifier, CNNClassifier, MLPClassifier
from .data_preprocessor import BaseDataPreprocessor, ImgDataPreprocessor
from .torchvision_classifier import TorchvisionClassifier
from .wrappers import MiniDistributedDataParallel, is_model_wrapper

__all__ = [
    "BaseModel", "build_data_preprocessor", "BaseClassifier", "CNNClassifier", "MLPClassifier",
    "BaseDataPreprocessor", "ImgDataPreprocessor", "MiniDistributedDataParallel",
    "is_model_wrapper", "TorchvisionClassifier",
]
