"""What the vision tests share (tests/vision/conftest.py skips or fails them without torchvision),
and CIFAR-10 files written in the real format."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

SKIP_REASON = "torchvision does not import beside this torch; run the vision tests with `make test-vision`"


def _torchvision_error() -> str | None:
    try:
        importlib.import_module("torchvision.transforms.v2")
    except (ImportError, OSError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


TORCHVISION_ERROR = _torchvision_error()

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 8, test_size: int = 16, seed: int = 0) -> Path:
    """CIFAR-10 as torchvision reads it from disk: ``root/cifar-10-batches-py`` with five
    pickled training batches, a test batch and ``batches.meta``, holding random 32x32 images
    whose labels are ``index % 10``. Returns ``root``. Needs NumPy (a torchvision dependency)."""
    import numpy

    rng = numpy.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = test_size if name == "test_batch" else per_batch
        data = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=numpy.uint8)
        entry = {"batch_label": name, "data": data, "labels": [i % 10 for i in range(count)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch}, handle)
    return root
