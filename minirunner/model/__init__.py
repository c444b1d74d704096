"""Models: the :class:`BaseModel` interface, data preprocessors, the DDP wrapper and the
example classifiers used by the bundled configs."""

from .averaged_model import BaseAveragedModel, ExponentialMovingAverage, MomentumAnnealingEMA, StochasticWeightAverage
from .base_model import BaseModel, build_data_preprocessor
from .base_module import BaseModule, ModuleDict, ModuleList, Sequential
from .base_tta_model import BaseTTAModel
from .classifiers import BaseClassifier, CNNClassifier, MLPClassifier
from .data_preprocessor import BaseDataPreprocessor, ImgDataPreprocessor
from .torchvision_classifier import TorchvisionClassifier
from .pretrained_init import PretrainedInit, load_pretrained_state_dict
from .weight_init import (
    WEIGHT_INITIALIZERS,
    BaseInit,
    Caffe2XavierInit,
    ConstantInit,
    KaimingInit,
    NormalInit,
    TruncNormalInit,
    UniformInit,
    XavierInit,
    bias_init_with_prob,
    caffe2_xavier_init,
    constant_init,
    initialize,
    kaiming_init,
    normal_init,
    trunc_normal_,
    trunc_normal_init,
    uniform_init,
    xavier_init,
)
from .sync_bn import revert_sync_batchnorm
from .wrappers import MiniDistributedDataParallel, is_model_wrapper

__all__ = [
    "BaseModel", "build_data_preprocessor", "BaseClassifier", "CNNClassifier", "MLPClassifier",
    "BaseDataPreprocessor", "ImgDataPreprocessor", "MiniDistributedDataParallel",
    "is_model_wrapper", "TorchvisionClassifier", "BaseModule", "ModuleDict", "ModuleList",
    "Sequential", "WEIGHT_INITIALIZERS", "BaseInit", "Caffe2XavierInit", "ConstantInit",
    "KaimingInit", "NormalInit", "PretrainedInit", "TruncNormalInit", "UniformInit", "XavierInit",
    "bias_init_with_prob", "caffe2_xavier_init", "constant_init", "initialize", "kaiming_init",
    "load_pretrained_state_dict", "normal_init", "trunc_normal_", "trunc_normal_init",
    "uniform_init", "xavier_init", "revert_sync_batchnorm", "BaseAveragedModel",
    "ExponentialMovingAverage", "MomentumAnnealingEMA", "StochasticWeightAverage", "BaseTTAModel",
]
