"""Regenerate minirunner/dataset/data/digits.pt.gz from scikit-learn's copy of the digits.

The data is the test part of the "Optical Recognition of Handwritten Digits" set (UCI
Machine Learning Repository, E. Alpaydin and C. Kaynak, 1998; CC BY 4.0): 1,797 images of
8x8 pixels with values 0..16, ten classes. scikit-learn ships it as
``sklearn.datasets.load_digits``.

Run it in an environment that has scikit-learn and torch (minirunner itself needs neither
NumPy nor scikit-learn):

    python3 -m venv /tmp/skl && /tmp/skl/bin/pip install scikit-learn torch
    /tmp/skl/bin/python tools/make_digits_data.py

The output is a gzip-compressed ``torch.save`` file holding only tensors, strings and ints,
so ``torch.load(..., weights_only=True)`` reads it without NumPy:

    images         uint8 (1797, 8, 8), values 0..16
    labels         uint8 (1797,), values 0..9
    train_indices  int64, sorted: the fixed training split (about 80% of each class)
    val_indices    int64, sorted: the fixed validation split (the rest)
    format_version int (1)
    source, license  str

The split is stratified: for each class, its indices are shuffled with a torch generator
seeded with SPLIT_SEED and the first round(20%) go to validation. The indices are stored, so
the split never depends on the RNG of the torch version that reads the file.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import torch

SPLIT_SEED = 0
VAL_FRACTION = 0.2
FORMAT_VERSION = 1
SOURCE = (
    "Optical Recognition of Handwritten Digits (test set), UCI Machine Learning Repository, "
    "E. Alpaydin and C. Kaynak, 1998, "
    "https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits; "
    "the copy shipped by scikit-learn as sklearn.datasets.load_digits"
)
LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "minirunner" / "dataset" / "data" / "digits.pt.gz"


def stratified_split(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, val) indices, each sorted, with VAL_FRACTION of every class in val."""
    generator = torch.Generator().manual_seed(SPLIT_SEED)
    val_parts = []
    for label in range(int(labels.max()) + 1):
        members = (labels == label).nonzero().flatten()
        shuffled = members[torch.randperm(len(members), generator=generator)]
        val_parts.append(shuffled[: round(len(members) * VAL_FRACTION)])
    val = torch.cat(val_parts).sort().values
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[val] = True
    train = (~is_val).nonzero().flatten()
    return train, val


def main() -> None:
    """Load the digits from scikit-learn, split them and write the compressed file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the file")
    args = parser.parse_args()

    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images.tolist())
    if not torch.equal(images, images.round()) or images.min() < 0 or images.max() > 16:
        raise SystemExit("unexpected pixel values: expected integers in 0..16")
    images = images.to(torch.uint8)
    labels = torch.tensor(digits.target.tolist(), dtype=torch.uint8)
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        raise SystemExit(f"unexpected shapes {tuple(images.shape)}, {tuple(labels.shape)}")
    train, val = stratified_split(labels.long())

    payload = dict(
        images=images,
        labels=labels,
        train_indices=train,
        val_indices=val,
        format_version=FORMAT_VERSION,
        source=SOURCE,
        license=LICENSE,
    )
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical from one run to the next.
    with open(args.out, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
    ) as compressed:
        compressed.write(buffer.getvalue())
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes): {len(train)} train and "
        f"{len(val)} val samples"
    )


if __name__ == "__main__":
    main()
