"""A classifier around any ``torchvision.models`` network (optional: the ``vision`` extra)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from torch import nn

from minirunner.registry import MODELS
from minirunner.utils import ConfigError, did_you_mean
from minirunner.utils.install_hint import extra_install_hint

from .classifiers import BaseClassifier


@MODELS.register_module()
class TorchvisionClassifier(BaseClassifier):
    """A torchvision network (``resnet18``, ``mobilenet_v3_small``, ...) as a classifier.

    torchvision is imported only when the model is built.

    Args:
        arch: a builder function in ``torchvision.models``.
        num_classes: the number of classes.
        cifar_stem: for 32x32 inputs (CIFAR-10): a ResNet's 7x7 stride-2 stem and its
            max-pool are replaced by one 3x3 stride-1 convolution.
        weights: passed to the builder (e.g. ``'IMAGENET1K_V1'``; None for random weights).
        data_preprocessor: see :class:`~minirunner.model.BaseModel`.
        init_cfg: weight initialisation applied by ``init_weights()``; None keeps the
            network's own initialisation (and ``weights``).
    """

    def __init__(
        self,
        arch: str = "resnet18",
        num_classes: int = 10,
        cifar_stem: bool = False,
        weights: str | None = None,
        data_preprocessor: Mapping | nn.Module | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        try:
            models = importlib.import_module("torchvision.models")
        except (ImportError, OSError, RuntimeError) as error:
            raise ConfigError(
                f"needs torchvision, which cannot be imported ({type(error).__name__}: {error}); "
                f"install a torchvision build that matches your torch: {extra_install_hint('vision')}",
                key="type",
            ) from error
        builder = getattr(models, arch, None)
        if not callable(builder) or arch.startswith("_"):
            names = [n for n in dir(models) if n.islower() and not n.startswith("_")]
            raise ConfigError(f"torchvision.models has no {arch!r}.{did_you_mean(arch, names)}", key="arch")
        net = builder(weights=weights, num_classes=num_classes)
        if cifar_stem:
            if not (hasattr(net, "conv1") and hasattr(net, "maxpool")):
                raise ConfigError(f"cifar_stem applies to ResNets only, not {arch!r}", key="cifar_stem")
            net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        self.net = net
