"""Data preprocessors: the first step of every train/val/test step.

A preprocessor receives the collated batch straight from the dataloader, moves it to the
model's device and may normalise it. It is a submodule of the model, so it follows the model
through ``model.to(...)``/``model.cuda()`` and runs inside the model's autocast context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from minirunner.registry import MODELS
from minirunner.structures import BaseDataElement
from minirunner.utils import ConfigError


_COPY_STREAMS: dict[torch.device, Any] = {}


def _copy_stream(device: torch.device) -> Any:
    """The side stream for host-to-device copies to ``device`` (one per device, made once)."""
    stream = _COPY_STREAMS.get(device)
    if stream is None:
        stream = _COPY_STREAMS[device] = torch.cuda.Stream(device)
    return stream


def _record_stream(data: Any, stream: Any) -> None:
    """Mark every CUDA tensor in ``data`` as used on ``stream``: they were allocated on the
    copy stream, and this keeps the allocator from reusing their memory before ``stream``
    is done with them."""
    if isinstance(data, torch.Tensor):
        if data.is_cuda:
            data.record_stream(stream)
    elif isinstance(data, Mapping):
        for value in data.values():
            _record_stream(value, stream)
    elif isinstance(data, (list, tuple)):
        for value in data:
            _record_stream(value, stream)
    elif isinstance(data, BaseDataElement):
        for value in data.all_values():
            _record_stream(value, stream)


@MODELS.register_module()
class BaseDataPreprocessor(nn.Module):
    """Moves every tensor of a batch to the device of the model that owns this module.

    Tensors are found inside nested dicts, lists and tuples (named tuples keep their type);
    anything else (strings, numbers, ``None``) is passed through unchanged. The copy to an
    accelerator is non-blocking, so a batch from pinned memory overlaps with compute; to a
    CUDA device, a batch dict of tensors is copied on a stream of its own, so the copy runs
    while the GPU is still busy with the previous step's kernels, and the step waits for it
    on the GPU, never on the host.

    Args:
        non_blocking: use asynchronous host-to-device copies. Copies to the CPU are always
            blocking, because a non-blocking device-to-host copy may be read before it lands.

    Example:
        >>> pre = BaseDataPreprocessor()
        >>> batch = dict(inputs=torch.zeros(2, 3), data_samples=[torch.tensor(1), 'a'])
        >>> pre(batch)['data_samples'][1]
        'a'
    """

    def __init__(self, non_blocking: bool = True) -> None:
        super().__init__()
        self.non_blocking = non_blocking
        self._set_device(torch.device("cpu"))

    def _set_device(self, device: torch.device) -> None:
        self._device = device
        # Kept as a bool: reading ``device.type`` builds a new string, which on every batch
        # cost more than the rest of the CPU pass-through below.
        self._on_cpu = device.type == "cpu"
        self._on_cuda = device.type == "cuda"

    @property
    def device(self) -> torch.device:
        """The device batches are moved to: where this module was last moved."""
        return self._device

    def _apply(self, fn: Any, recurse: bool = True) -> "BaseDataPreprocessor":
        # ``to``/``cuda``/``cpu`` on the owning model all funnel through ``_apply`` on each
        # child; running ``fn`` on an empty probe tells us where it sends tensors without
        # the parent model having to forward the call explicitly.
        probe = fn(torch.empty(0, device=self._device))
        if isinstance(probe, torch.Tensor):
            self._set_device(probe.device)
        return super()._apply(fn, recurse)

    def cast_data(self, data: Any) -> Any:
        """Return ``data`` with every tensor inside it moved to :attr:`device`."""
        # Runs every iteration: the common cases (tensor, plain dict) are tested first and
        # with cheap checks, and tensors already in place are returned untouched.
        if isinstance(data, torch.Tensor):
            # `to` hands back the tensor itself when it is already there.
            return data.to(self._device, non_blocking=self.non_blocking and not self._on_cpu)
        if isinstance(data, dict) or isinstance(data, Mapping):
            return {key: self.cast_data(value) for key, value in data.items()}
        if isinstance(data, (str, bytes)):
            return data
        if isinstance(data, tuple) and hasattr(data, "_fields"):
            return type(data)(*(self.cast_data(item) for item in data))
        if isinstance(data, (list, tuple)):
            return type(data)(self.cast_data(item) for item in data)
        if isinstance(data, BaseDataElement):
            return data.to(self._device, non_blocking=self.non_blocking and not self._on_cpu)
        return data

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move ``data`` to the model's device. ``training`` lets subclasses augment."""
        if self._on_cpu and type(data) is dict:
            # Runs every iteration: a batch of CPU tensors for a CPU model needs no copy.
            for value in data.values():
                if type(value) is not torch.Tensor or not value.is_cpu:
                    return self.cast_data(data)
            return data
        return self._move(data)

    def _move(self, data: Any) -> Any:
        """:meth:`cast_data`; a batch dict bound for CUDA is copied on a side stream: the host
        enqueues the copy and moves on, the GPU runs it next to the previous step's kernels,
        and this step's kernels wait for it."""
        if not (self._on_cuda and self.non_blocking and type(data) is dict):
            return self.cast_data(data)
        stream = _copy_stream(self._device)
        main = torch.cuda.current_stream(self._device)
        with torch.cuda.stream(stream):
            data = self.cast_data(data)
        main.wait_stream(stream)
        _record_stream(data, main)
        return data


@MODELS.register_module()
class ImgDataPreprocessor(BaseDataPreprocessor):
    """Moves a batch of images to the device, converts it to float and normalises it.

    ``data['inputs']`` is either a stacked tensor ``(N, C, ...)`` or a list of ``(C, H, W)``
    tensors (as ``pseudo_collate`` leaves them), which are padded at the bottom and right
    to a common size and stacked. Normalisation and padding happen on the device, so the
    dataloader can ship compact ``uint8`` images.

    Args:
        mean: per-channel mean subtracted from the inputs; None skips normalisation.
        std: per-channel standard deviation the inputs are divided by; given with ``mean``.
        pad_size_divisor: pad height and width up to a multiple of this.
        pad_value: value of the padded pixels.
        bgr_to_rgb: reverse the channel order (3-channel inputs).
        rgb_to_bgr: the same, named for the other direction.
        non_blocking: see :class:`BaseDataPreprocessor`.
        channels_last: return 4-D batches in the channels-last memory format (same shape
            and values). Convolutions follow their input's format, and on GPUs with tensor
            cores (AMP) they usually run faster in this one.

    Example:
        >>> pre = ImgDataPreprocessor(mean=[127.5], std=[127.5])
        >>> pre(dict(inputs=torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)))['inputs']
        tensor([[[[1., 1.],
                  [1., 1.]]]])
    """

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        pad_size_divisor: int = 1,
        pad_value: float = 0,
        bgr_to_rgb: bool = False,
        rgb_to_bgr: bool = False,
        non_blocking: bool = True,
        channels_last: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        if (mean is None) != (std is None):
            raise ConfigError(
                "mean and std must be given together; set both (e.g. mean=[0.5], std=[0.5]) "
                "or neither",
                key="std" if std is None else "mean",
            )
        if bgr_to_rgb and rgb_to_bgr:
            raise ConfigError(
                "bgr_to_rgb and rgb_to_bgr cannot both be True; both reverse the channels, "
                "so set only one of them",
                key="rgb_to_bgr",
            )
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ConfigError(
                f"must be a positive int, got {pad_size_divisor!r}", key="pad_size_divisor"
            )
        self._enable_normalize = mean is not None
        if mean is not None:
            mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
            std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
            if mean_t.numel() != std_t.numel():
                raise ConfigError(
                    f"mean has {mean_t.numel()} values but std has {std_t.numel()}; give one "
                    "value per channel to both",
                    key="std",
                )
            if bool((std_t == 0).any()):
                raise ConfigError(f"must not contain 0, got {list(std)}", key="std")
            # Not persistent: they come from the config, not from training, so checkpoints
            # stay loadable when the config's normalisation changes.
            self.register_buffer("mean", mean_t, persistent=False)
            self.register_buffer("std", std_t, persistent=False)
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = pad_value
        self._swap_channels = bgr_to_rgb or rgb_to_bgr
        self.channels_last = channels_last

    def forward(self, data: Any, training: bool = False) -> Any:
        """Move, convert to float, normalise and pad ``data['inputs']``."""
        data = self._move(data)
        if not isinstance(data, dict) or "inputs" not in data:
            found = f"keys {list(data)}" if isinstance(data, dict) else type(data).__name__
            raise TypeError(
                "ImgDataPreprocessor expects a batch dict with an 'inputs' key (datasets "
                f"return dict(inputs=..., data_samples=...)), got {found}"
            )
        inputs = data["inputs"]
        if isinstance(inputs, torch.Tensor):
            inputs = self._pad(self._normalize(inputs, channel_dim=1))
        elif isinstance(inputs, (list, tuple)):
            images = [self._normalize(image, channel_dim=0) for image in inputs]
            inputs = self._stack_padded(images)
        else:
            raise TypeError(
                "ImgDataPreprocessor expects data['inputs'] to be a tensor or a list of "
                f"tensors, got {type(inputs).__name__}"
            )
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        data["inputs"] = inputs
        return data

    def _normalize(self, inputs: torch.Tensor, channel_dim: int) -> torch.Tensor:
        if self._swap_channels:
            if inputs.shape[channel_dim] != 3:
                raise ValueError(
                    "bgr_to_rgb/rgb_to_bgr needs 3-channel inputs, got shape "
                    f"{tuple(inputs.shape)}"
                )
            inputs = inputs.flip(channel_dim)
        inputs = inputs.float()
        if self._enable_normalize:
            # Shape the (C,) statistics so they broadcast over the channel dimension of
            # inputs of any rank: (N, C), (N, C, H, W), (C, H, W), ...
            shape = [1] * inputs.dim()
            shape[channel_dim] = -1
            inputs = (inputs - self.mean.view(shape)) / self.std.view(shape)
        return inputs

    def _pad(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.pad_size_divisor == 1 or inputs.dim() < 3:
            return inputs
        height, width = inputs.shape[-2:]
        pad_h = math.ceil(height / self.pad_size_divisor) * self.pad_size_divisor - height
        pad_w = math.ceil(width / self.pad_size_divisor) * self.pad_size_divisor - width
        if pad_h == 0 and pad_w == 0:
            return inputs
        return F.pad(inputs, (0, pad_w, 0, pad_h), value=self.pad_value)

    def _stack_padded(self, images: list[torch.Tensor]) -> torch.Tensor:
        if not images:
            raise ValueError("ImgDataPreprocessor got an empty list of inputs")
        divisor = self.pad_size_divisor
        height = max(image.shape[-2] for image in images)
        width = max(image.shape[-1] for image in images)
        height = math.ceil(height / divisor) * divisor
        width = math.ceil(width / divisor) * divisor
        padded = [
            F.pad(
                image,
                (0, width - image.shape[-1], 0, height - image.shape[-2]),
                value=self.pad_value,
            )
            for image in images
        ]
        return torch.stack(padded)
