"""Example classifiers used by the bundled configs: an MLP and a small CNN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from minirunner.registry import MODELS
from minirunner.utils import ConfigError

from .base_model import BaseModel

_MODES = ("tensor", "loss", "predict")


class BaseClassifier(BaseModel):
    """A :class:`BaseModel` for single-label classification with a cross-entropy loss.

    Subclasses build ``self.net``, a module mapping the batch's inputs to logits
    ``(N, num_classes)``. ``data_samples`` are the labels: a tensor ``(N,)`` of class
    indices, or a list of ints or 0-d tensors (as ``pseudo_collate`` leaves them), or a
    list of data elements (:class:`~minirunner.structures.BaseDataElement`) or dicts whose
    ``gt_label`` holds the label.

    ``forward`` modes:
        - ``'tensor'``: the logits.
        - ``'loss'``: ``dict(loss=cross_entropy(logits, labels))``.
        - ``'predict'``: one dict per sample with ``pred_label`` (0-d long tensor),
          ``pred_score`` (softmax probabilities, ``(num_classes,)``) and, when labels are
          given, ``gt_label`` (0-d long tensor). :class:`~minirunner.evaluator.Accuracy`
          reads these.
    """

    net: nn.Module

    def forward(
        self, inputs: Any, data_samples: Any = None, mode: str = "tensor"
    ) -> Any:
        """Compute logits, the loss or predictions depending on ``mode``."""
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        # `_modules` is where `self.net` is found, without nn.Module.__getattr__'s detour
        # (a Python call from C) on every iteration; a `net` kept elsewhere still works.
        net = self._modules.get("net")
        logits = (self.net if net is None else net)(inputs)
        if mode == "tensor":
            return logits
        if mode == "loss":
            if data_samples is None:
                raise ValueError("forward(mode='loss') needs the labels as data_samples")
            return dict(loss=F.cross_entropy(logits, self._labels(data_samples, logits)))
        if mode == "predict":
            return self._predict(logits, data_samples)
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")

    @staticmethod
    def _labels(data_samples: Any, logits: torch.Tensor) -> torch.Tensor:
        if isinstance(data_samples, torch.Tensor):
            labels = data_samples
            # The usual case, collated int64 labels on the logits' device, is used as it is.
            # get_device() (an int) rather than .device, which builds two objects per call.
            if labels.dtype is torch.long and labels.dim() == 1 and labels.get_device() == logits.get_device():
                return labels
        else:
            labels = torch.as_tensor(
                [int(_label_of(label)) for label in data_samples], device=logits.device
            )
        return labels.to(logits.device).long().view(-1)

    def _predict(self, logits: torch.Tensor, data_samples: Any) -> list[dict[str, torch.Tensor]]:
        scores = logits.detach().float().softmax(dim=1)
        pred_labels = scores.argmax(dim=1)
        labels = None if data_samples is None else self._labels(data_samples, logits)
        predictions = []
        for index in range(scores.shape[0]):
            prediction = dict(pred_label=pred_labels[index], pred_score=scores[index])
            if labels is not None:
                prediction["gt_label"] = labels[index]
            predictions.append(prediction)
        return predictions


def _label_of(sample: Any) -> Any:
    """The label of one sample: itself, or its ``gt_label`` (a data element or a dict)."""
    if isinstance(sample, Mapping):
        return sample["gt_label"]
    label = getattr(sample, "gt_label", None)
    if label is None:
        return sample
    if isinstance(label, torch.Tensor) and label.numel() == 1:
        return label.reshape(())
    return label


def _check_dropout(dropout: float) -> None:
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"must be a number in [0, 1), got {dropout!r}", key="dropout")


@MODELS.register_module()
class MLPClassifier(BaseClassifier):
    """A multi-layer perceptron classifier; inputs are flattened first.

    Args:
        in_features: number of input values per sample (64 for the 8x8 digits).
        hidden_dims: width of each hidden layer; ``()`` gives a linear classifier.
        num_classes: number of classes.
        dropout: dropout probability after each hidden activation (0 disables it).
        data_preprocessor: see :class:`BaseModel`.
        init_cfg: weight initialisation applied by ``init_weights()`` (see
            :class:`~minirunner.model.BaseModule`); None keeps PyTorch's defaults.

    Example:
        >>> model = MLPClassifier(in_features=64, hidden_dims=(32,), num_classes=10)
        >>> model(torch.zeros(5, 1, 8, 8)).shape
        torch.Size([5, 10])
    """

    def __init__(
        self,
        in_features: int = 64,
        hidden_dims: Sequence[int] = (128,),
        num_classes: int = 10,
        dropout: float = 0.0,
        data_preprocessor: Mapping | nn.Module | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        _check_dropout(dropout)
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)


@MODELS.register_module()
class CNNClassifier(BaseClassifier):
    """A small convolutional classifier for images of any size.

    Each stage is conv3x3 -> BatchNorm -> ReLU; stages after the first start with a 2x2
    max-pool (skipped once the feature map is 1 pixel high or wide). Adaptive average
    pooling to a ``pool_size x pool_size`` grid, which keeps a little of the layout, and a
    linear layer give the logits.

    Args:
        in_channels: channels of the input images (1 for the digits, 3 for CIFAR-10).
        num_classes: number of classes.
        channels: output channels of each stage.
        dropout: dropout probability before the final linear layer (0 disables it).
        pool_size: side of the grid the last feature map is averaged down to.
        data_preprocessor: see :class:`BaseModel`.
        init_cfg: weight initialisation applied by ``init_weights()`` (see
            :class:`~minirunner.model.BaseModule`); None keeps PyTorch's defaults.

    Example:
        >>> model = CNNClassifier(in_channels=1, num_classes=10, channels=(8, 16))
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        dropout: float = 0.0,
        pool_size: int = 2,
        data_preprocessor: Mapping | nn.Module | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        _check_dropout(dropout)
        if not channels:
            raise ConfigError("needs at least one stage, e.g. channels=(32, 64)", key="channels")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"must be a positive int, got {pool_size!r}", key="pool_size")
        layers: list[nn.Module] = []
        width = in_channels
        for stage, out_channels in enumerate(channels):
            if stage > 0:
                layers.append(_MaxPoolIfLarger())
            layers += [
                nn.Conv2d(width, out_channels, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            width = out_channels
        layers += [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width * pool_size * pool_size, num_classes))
        self.net = nn.Sequential(*layers)


class _MaxPoolIfLarger(nn.Module):
    """2x2 max-pooling that leaves maps of height or width 1 alone (tiny inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < 2 or x.shape[-2] < 2:
            return x
        return F.max_pool2d(x, 2)
