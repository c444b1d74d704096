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

import torch
from torch.utils.data import Dataset

from minirunner.registry import DATASETS, TRANSFORMS
from minirunner.utils import ConfigError, did_you_mean
from minirunner.utils.install_hint import extra_install_hint

from .worker_init import seed_sample


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
            ``TRANSFORMS`` entry or a ``torchvision.transforms.v2`` class, e.g.
            ``[dict(type='RandomCrop', size=32, padding=4), dict(type='RandomHorizontalFlip')]``.
            A string ``dtype`` argument names a torch dtype (``dict(type='ToDtype',
            dtype='float32', scale=True)``). A PIL image left at the end becomes a uint8
            tensor (``PILToTensor``), a ``tv_tensors.Image`` a plain tensor.
        **kwargs: passed to the torchvision class (``root``, ``train``, ``download``, ...).

    In dataloader workers seeded by the runner, each sample's random transforms are
    seeded from (seed, epoch, index) (see :func:`~minirunner.dataset.worker_init.seed_sample`),
    so they do not depend on which worker loads the sample, and a resumed run repeats them.

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
        transforms = importlib.import_module("torchvision.transforms.v2")
        self._pil_to_tensor = transforms.functional.pil_to_tensor
        self.transform = _build_pipeline(transforms, pipeline or [])
        self.dataset = self._create(dataset_cls, dict(transform=self.transform, **kwargs))

    def _create(self, dataset_cls: type, kwargs: dict[str, Any]) -> Any:
        """Build the torchvision dataset; subclasses adjust how."""
        return dataset_cls(**kwargs)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        seed_sample(index)
        image, target = self.dataset[index]
        if isinstance(image, torch.Tensor):
            if type(image) is not torch.Tensor:  # a tv_tensors.Image: collate plain tensors
                image = image.as_subclass(torch.Tensor)
        elif type(image).__module__.startswith("PIL."):
            image = self._pil_to_tensor(image)
        return dict(inputs=image, data_samples=target)


def _build_pipeline(transforms: ModuleType, pipeline: Sequence[Mapping | Any]) -> Any:
    """The pipeline's steps in a ``Compose``; None for no steps (v2's Compose needs one)."""
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
                f"{name!r} is neither a registered transform nor a torchvision.transforms.v2 "
                f"transform.{did_you_mean(str(name), names)}",
                key=f"pipeline.{position}.type",
            )
        if isinstance(args.get("dtype"), str):
            dtype = getattr(torch, args["dtype"], None)
            if not isinstance(dtype, torch.dtype):
                raise ConfigError(
                    f"{args['dtype']!r} is not a torch dtype; write e.g. dtype='float32'",
                    key=f"pipeline.{position}.dtype",
                )
            args["dtype"] = dtype
        try:
            steps.append(step_cls(**args))
        except Exception as error:
            raise ConfigError(
                f"building {name} failed: {type(error).__name__}: {error}",
                key=f"pipeline.{position}",
            ) from error
    return transforms.Compose(steps) if steps else None


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


class CIFAR10(TorchvisionDataset):
    """torchvision's CIFAR-10 (32x32 RGB, 10 classes), read from its pickled batches in
    ``data_root/cifar-10-batches-py``.

    Args:
        data_root: folder the data is (or will be) stored in.
        train: the 50,000 training images (True) or the 10,000 test images.
        download: download the data when it is not in ``data_root``.
        pipeline: see :class:`TorchvisionDataset`.
        verify: check each file's MD5 against the official files, as torchvision does.
            ``verify=False`` skips only that check (for a copy in the same format whose
            files differ: converted, re-pickled or generated); every other step of loading
            stays torchvision's, and missing files are still an error.
    """

    torchvision_name = "CIFAR10"

    def __init__(
        self,
        data_root: str,
        train: bool = True,
        download: bool = False,
        pipeline: Sequence[Mapping | Any] | None = None,
        verify: bool = True,
    ) -> None:
        self.verify = verify
        super().__init__(
            self.torchvision_name, pipeline, root=data_root, train=train, download=download
        )

    def _create(self, dataset_cls: type, kwargs: dict[str, Any]) -> Any:
        dataset = dataset_cls.__new__(dataset_cls)
        if not self.verify:
            # torchvision checks each file with check_integrity(path, md5), which only tests
            # that the file exists when md5 is None; instance attributes shadow the class's
            # lists, so the object stays a plain (picklable) torchvision CIFAR10.
            dataset.train_list = [[name, None] for name, _ in dataset_cls.train_list]
            dataset.test_list = [[name, None] for name, _ in dataset_cls.test_list]
            dataset.meta = {**dataset_cls.meta, "md5": None}
        try:
            dataset_cls.__init__(dataset, **kwargs)
        except RuntimeError as error:
            fix = "point data_root at the folder that holds cifar-10-batches-py"
            if self.verify:
                fix += ", or, for a copy whose files differ from the official ones, set verify=False"
            raise ConfigError(
                f"CIFAR-10 could not be loaded from {kwargs['root']!r} (torchvision: {error}); {fix}",
                key="data_root",
            ) from error
        return dataset


class MNIST(_SplitDataset):
    """torchvision's MNIST (28x28 grey digits, 10 classes); arguments as :class:`CIFAR10`,
    without ``verify`` (60,000 training and 10,000 test images)."""

    torchvision_name = "MNIST"


class FashionMNIST(_SplitDataset):
    """torchvision's Fashion-MNIST (28x28 grey clothing images, 10 classes); arguments as
    :class:`MNIST`."""

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
