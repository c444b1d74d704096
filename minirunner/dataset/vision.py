"""Wrappers for torchvision's datasets (optional: ``pip install -e '.[vision]'``).

torchvision is imported only when one of these datasets is built, so ``import
minirunner.dataset`` stays cheap. The wrappers are registered in ``DATASETS`` only when
torchvision is installed; if it is installed but cannot be imported (a build for another
torch, missing CUDA libraries), building one raises an error that says why.

Each item is ``dict(inputs=<uint8 image tensor (C, H, W)>, data_samples=<int label>)``;
normalise on the device with ``ImgDataPreprocessor(mean=..., std=...)``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from torch.utils.data import Dataset

from minirunner.registry import DATASETS, TRANSFORMS
from minirunner.utils import ConfigError, did_you_mean
from minirunner.utils.install_hint import extra_install_hint


def import_torchvision() -> ModuleType:
    """Import torchvision, or raise ImportError explaining why it cannot be used."""
    try:
        return importlib.import_module("torchvision")
    except (ImportError, OSError, RuntimeError) as error:
        raise ImportError(
            f"torchvision cannot be imported ({type(error).__name__}: {error}); install a "
            f"torchvision build that matches your torch: {extra_install_hint('vision')}"
        ) from error


def torchvision_available() -> bool:
    """True when torchvision imports in this environment (imports it when it does)."""
    try:
        import_torchvision()
    except ImportError:
        return False
    return True


class TorchvisionDataset(Dataset):
    """Any ``torchvision.datasets`` class, returning samples in minirunner's format.

    Args:
        dataset_type: the class name in ``torchvision.datasets`` (``'CIFAR10'``,
            ``'FakeData'``, ...).
        pipeline: transforms applied to each image, as dicts whose ``type`` names a
            ``TRANSFORMS`` entry or a ``torchvision.transforms`` class, e.g.
            ``[dict(type='RandomCrop', size=32, padding=4), dict(type='RandomHorizontalFlip')]``.
            A PIL image left at the end is converted with ``PILToTensor`` (uint8).
        **kwargs: passed to the torchvision class (``root``, ``train``, ``download``, ...).

    Example:
        >>> data = TorchvisionDataset('FakeData', size=4, image_size=(3, 8, 8))  # doctest: +SKIP
        >>> data[0]['inputs'].shape  # doctest: +SKIP
        torch.Size([3, 8, 8])
    """

    def __init__(
        self,
        dataset_type: str,
        pipeline: Sequence[Mapping | Any] | None = None,
        **kwargs: Any,
    ) -> None:
        torchvision = import_torchvision()
        dataset_cls = getattr(torchvision.datasets, dataset_type, None)
        if not isinstance(dataset_cls, type):
            names = [name for name in dir(torchvision.datasets) if name[:1].isupper()]
            raise ConfigError(
                f"torchvision.datasets has no dataset {dataset_type!r}."
                f"{did_you_mean(dataset_type, names)}",
                key="dataset_type",
            )
        self.transform = _build_pipeline(torchvision, pipeline or [])
        self.dataset = dataset_cls(transform=self.transform, **kwargs)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, target = self.dataset[index]
        return dict(inputs=image, data_samples=target)


def _build_pipeline(torchvision: ModuleType, pipeline: Sequence[Mapping | Any]) -> Any:
    transforms = torchvision.transforms
    steps = []
    for position, step in enumerate(pipeline):
        if not isinstance(step, Mapping):
            steps.append(step)
            continue
        args = dict(step)
        name = args.pop("type", None)
        step_cls = TRANSFORMS.get(name) if isinstance(name, str) else name
        if step_cls is None and isinstance(name, str):
            step_cls = getattr(transforms, name, None)
        if step_cls is None:
            names = [n for n in dir(transforms) if n[:1].isupper()] + TRANSFORMS.known_names()
            raise ConfigError(
                f"{name!r} is neither a registered transform nor a torchvision transform."
                f"{did_you_mean(str(name), names)}",
                key=f"pipeline.{position}.type",
            )
        try:
            steps.append(step_cls(**args))
        except Exception as error:
            raise ConfigError(
                f"building {name} failed: {type(error).__name__}: {error}",
                key=f"pipeline.{position}",
            ) from error
    steps.append(_ToTensorIfImage(transforms.PILToTensor()))
    return transforms.Compose(steps)


class _ToTensorIfImage:
    """Converts a PIL image to a uint8 tensor and leaves anything else alone."""

    def __init__(self, to_tensor: Any) -> None:
        self.to_tensor = to_tensor

    def __call__(self, image: Any) -> Any:
        if type(image).__module__.startswith("PIL."):
            return self.to_tensor(image)
        return image


class _SplitDataset(TorchvisionDataset):
    """A torchvision dataset with a train/test switch and a download option."""

    torchvision_name = ""

    def __init__(
        self,
        data_root: str,
        train: bool = True,
        download: bool = False,
        pipeline: Sequence[Mapping | Any] | None = None,
    ) -> None:
        super().__init__(
            self.torchvision_name, pipeline, root=data_root, train=train, download=download
        )


class CIFAR10(_SplitDataset):
    """torchvision's CIFAR-10 (32x32 RGB, 10 classes).

    Args:
        data_root: folder the data is (or will be) stored in.
        train: the 50,000 training images (True) or the 10,000 test images.
        download: download the data when it is not in ``data_root``.
        pipeline: see :class:`TorchvisionDataset`.
    """

    torchvision_name = "CIFAR10"


class MNIST(_SplitDataset):
    """torchvision's MNIST (28x28 grey digits, 10 classes); arguments as :class:`CIFAR10`
    (60,000 training and 10,000 test images)."""

    torchvision_name = "MNIST"


class FashionMNIST(_SplitDataset):
    """torchvision's Fashion-MNIST (28x28 grey clothing images, 10 classes); arguments as
    :class:`CIFAR10`."""

    torchvision_name = "FashionMNIST"


class ImageFolder(TorchvisionDataset):
    """torchvision's ImageFolder: one sub-folder of images per class.

    Args:
        data_root: the folder holding one sub-folder per class.
        pipeline: see :class:`TorchvisionDataset`; add a ``Resize``/``CenterCrop`` when the
            images differ in size, or collate with ``pseudo_collate``.
    """

    def __init__(self, data_root: str, pipeline: Sequence[Mapping | Any] | None = None) -> None:
        super().__init__("ImageFolder", pipeline, root=data_root)


VISION_DATASETS = (TorchvisionDataset, CIFAR10, MNIST, FashionMNIST, ImageFolder)

# find_spec looks for the package without importing it (importing costs about a second).
if importlib.util.find_spec("torchvision") is not None:
    for _cls in VISION_DATASETS:
        DATASETS.register_module(module=_cls)
