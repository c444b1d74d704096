"""Data: dataloaders built from configs, rank-aware samplers, collate functions and the
built-in datasets (synthetic data, the embedded 8x8 digits, torchvision wrappers), the
reference's ``BaseDataset`` with its ``Compose`` pipeline, and the dataset wrappers."""

from .base_dataset import BaseDataset, force_full_init
from .builder import build_dataloader
from .collate import FetchedBatch, collate_batched, default_collate, pseudo_collate
from .compose import Compose
from .dataset_wrapper import ClassBalancedDataset, ConcatDataset, RepeatDataset
from .datasets import DigitsDataset, InMemoryDataset, SyntheticClassification, load_digits_file
from .sampler import DefaultSampler, InfiniteSampler, sync_random_seed
from .vision import (
    CIFAR10,
    MNIST,
    FashionMNIST,
    ImageFolder,
    TorchvisionDataset,
    import_torchvision,
    torchvision_available,
)
from .worker_init import worker_init_fn

__all__ = [
    "build_dataloader", "default_collate", "pseudo_collate", "DigitsDataset",
    "SyntheticClassification", "load_digits_file", "DefaultSampler", "InfiniteSampler",
    "sync_random_seed", "CIFAR10", "MNIST", "FashionMNIST", "ImageFolder",
    "TorchvisionDataset", "import_torchvision", "torchvision_available", "worker_init_fn",
    "BaseDataset", "force_full_init", "Compose", "ConcatDataset", "RepeatDataset",
    "ClassBalancedDataset", "collate_batched", "FetchedBatch", "InMemoryDataset",
]
