"""A classifier around any ``torchvision.models`` network (optional: the ``vision`` extra)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from torch import nn

from minirunner.logging import print_log
from minirunner.registry import MODELS
from minirunner.utils import ConfigError, did_you_mean, quoted_list
from minirunner.utils.install_hint import extra_install_hint

from .classifiers import BaseClassifier


@MODELS.register_module()
class TorchvisionClassifier(BaseClassifier):
    """A torchvision classification network (``resnet18``, ``mobilenet_v3_small``, ...).

    torchvision is imported only when the model is built.

    Args:
        arch: a classification model name, as ``torchvision.models.list_models()`` gives it.
        num_classes: the number of classes.
        cifar_stem: for 32x32 inputs (CIFAR-10): a ResNet's 7x7 stride-2 stem and its
            max-pool are replaced by one 3x3 stride-1 convolution.
        weights: pretrained weights by name (``'IMAGENET1K_V1'``, ``'DEFAULT'``); None for
            random weights. When ``num_classes`` differs from the weights' classes, the
            pretrained backbone is kept and the last layer is replaced by a new one with
            ``num_classes`` outputs. torchvision downloads the file into torch's hub cache
            (``$TORCH_HOME/hub/checkpoints``) once; offline, copy it there.
        data_preprocessor: see :class:`~minirunner.model.BaseModel`.
        init_cfg: weight initialisation applied by ``init_weights()``; None keeps the
            network's own initialisation (and ``weights``).

    Example:
        >>> model = TorchvisionClassifier('resnet18', num_classes=10)  # doctest: +SKIP
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
        # module=models lists the classification networks only (not detection, video, ...).
        names = models.list_models(module=models)
        if arch not in names:
            raise ConfigError(
                f"{arch!r} is not a torchvision classification model.{did_you_mean(arch, names)}",
                key="arch",
            )
        builder = models.get_model_builder(arch)
        if weights is None:
            net = builder(num_classes=num_classes)
        else:
            net = _pretrained(models, arch, weights, num_classes)
        if cifar_stem:
            if not (hasattr(net, "conv1") and hasattr(net, "maxpool")):
                raise ConfigError(f"cifar_stem applies to ResNets only, not {arch!r}", key="cifar_stem")
            net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        self.net = net


def _pretrained(models: ModuleType, arch: str, weights: str, num_classes: int) -> nn.Module:
    """``arch`` with the pretrained ``weights``; the head replaced when ``num_classes`` differs."""
    weights_enum = models.get_model_weights(arch)
    try:
        chosen = weights_enum.verify(weights)
    except (ValueError, KeyError, TypeError):
        options = [member.name for member in weights_enum] + ["DEFAULT"]
        raise ConfigError(
            f"{weights!r} are not weights of {arch}; choose one of {quoted_list(options)}, or None",
            key="weights",
        ) from None
    try:
        # Built with the weights' own classes: torchvision refuses another num_classes.
        net = models.get_model_builder(arch)(weights=chosen)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        reason = str(getattr(error, "reason", None) or error).splitlines()[0]
        raise ConfigError(
            f"the pretrained weights {chosen} could not be loaded from {chosen.url} ({reason}); "
            "without internet, put that file into torch's hub cache ($TORCH_HOME/hub/checkpoints, "
            "by default ~/.cache/torch/hub/checkpoints), or set weights=None",
            key="weights",
        ) from error
    pretrained_classes = len(chosen.meta["categories"])
    if num_classes != pretrained_classes:
        name = _replace_head(net, pretrained_classes, num_classes)
        print_log(
            f"TorchvisionClassifier: {arch} with {chosen}; its last layer {name!r} "
            f"({pretrained_classes} classes) is replaced by a new one with {num_classes} outputs",
            logger="current",
        )
    return net


def _replace_head(net: nn.Module, old_classes: int, num_classes: int) -> str:
    """Replace the last layer that produces ``old_classes`` outputs (a ``Linear``, or the
    1x1 ``Conv2d`` of SqueezeNet) by a freshly initialised one; return its name."""
    head_name = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == old_classes:
            head_name = name
        elif isinstance(module, nn.Conv2d) and module.out_channels == old_classes and module.kernel_size == (1, 1):
            head_name = name
    if head_name is None:
        raise ConfigError(
            f"found no last layer with {old_classes} outputs to replace for num_classes={num_classes}; "
            f"use num_classes={old_classes} and change the head in your own model",
            key="num_classes",
        )
    old = net.get_submodule(head_name)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)
    parent_name, _, child_name = head_name.rpartition(".")
    setattr(net.get_submodule(parent_name), child_name, new)
    return head_name
