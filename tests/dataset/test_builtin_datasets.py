"""SyntheticClassification and the embedded digits data."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minirunner.dataset import DigitsDataset, SyntheticClassification, load_digits_file
from minirunner.dataset.datasets import DIGITS_FILE
from minirunner.registry import DATASETS
from minirunner.utils import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_synthetic_is_deterministic_and_shaped():
    first = SyntheticClassification(num_samples=50, num_features=6, num_classes=4, seed=3)
    torch.manual_seed(999)  # the global RNG must not matter
    second = SyntheticClassification(num_samples=50, num_features=6, num_classes=4, seed=3)
    assert torch.equal(first.inputs, second.inputs) and torch.equal(first.labels, second.labels)
    other = SyntheticClassification(num_samples=50, num_features=6, num_classes=4, seed=4)
    assert not torch.equal(first.inputs, other.inputs)
    assert len(first) == 50
    item = first[7]
    assert set(item) == {"inputs", "data_samples"}
    assert item["inputs"].shape == (6,) and item["inputs"].dtype == torch.float32
    assert item["data_samples"].dtype == torch.int64 and 0 <= item["data_samples"] < 4
    assert set(first.labels.tolist()) == {0, 1, 2, 3}


def test_synthetic_classes_are_separable():
    # With little noise each sample is nearest to its own class centre.
    data = SyntheticClassification(num_samples=200, num_features=8, num_classes=5, noise=0.1)
    centres = torch.stack([data.inputs[data.labels == c].mean(0) for c in range(5)])
    nearest = torch.cdist(data.inputs, centres).argmin(1)
    assert torch.equal(nearest, data.labels)


def test_synthetic_validates_sizes():
    with pytest.raises(ConfigError) as info:
        SyntheticClassification(num_samples=0)
    assert info.value.key == "num_samples"


def test_digits_splits():
    train, val = DigitsDataset("train"), DigitsDataset("val")
    assert (len(train), len(val)) == (1438, 359)
    payload = load_digits_file()
    assert payload["images"].shape == (1797, 8, 8) and payload["images"].dtype == torch.uint8
    assert int(payload["images"].max()) == 16 and int(payload["images"].min()) == 0
    assert payload["labels"].shape == (1797,)
    assert sorted(set(payload["labels"].tolist())) == list(range(10))
    indices = torch.cat([payload["train_indices"], payload["val_indices"]]).sort().values
    assert torch.equal(indices, torch.arange(1797))  # disjoint and complete
    # Stratified: every class has about 20% of its samples in val.
    for digit in range(10):
        in_val = int((val.labels == digit).sum())
        in_all = int((payload["labels"] == digit).sum())
        assert abs(in_val - 0.2 * in_all) <= 0.5
    assert "CC BY 4.0" in payload["license"]


def test_digits_items():
    data = DigitsDataset("train")
    item = data[0]
    assert item["inputs"].shape == (1, 8, 8) and item["inputs"].dtype == torch.float32
    assert float(item["inputs"].min()) >= 0 and float(item["inputs"].max()) <= 1
    assert item["data_samples"].dtype == torch.int64
    payload = load_digits_file()
    first = payload["train_indices"][0]
    assert torch.equal(item["inputs"][0] * 16, payload["images"][first].float())
    assert int(item["data_samples"]) == int(payload["labels"][first])
    assert DATASETS.get("DigitsDataset") is DigitsDataset


def test_digits_first_image_is_the_known_zero():
    # The first sample of the UCI/scikit-learn digits is a 0 with this top row.
    payload = load_digits_file()
    assert int(payload["labels"][0]) == 0
    assert payload["images"][0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def test_digits_split_errors_and_data_root(tmp_path):
    with pytest.raises(ConfigError) as info:
        DigitsDataset("valid")
    assert info.value.key == "split" and "Did you mean 'val'" in str(info.value)
    shutil.copy(DIGITS_FILE, tmp_path / DIGITS_FILE.name)
    assert len(DigitsDataset("val", data_root=str(tmp_path))) == 359
    with pytest.raises(FileNotFoundError, match="make_digits_data"):
        DigitsDataset("val", data_root=str(tmp_path / "nowhere"))


def test_digits_file_is_gzip_of_a_weights_only_payload():
    with gzip.open(DIGITS_FILE, "rb") as compressed:
        assert compressed.read(2) == b"PK"  # torch.save's zip container inside gzip


@pytest.mark.slow
def test_loading_digits_never_imports_numpy():
    # NumPy is blocked outright, so the check holds whether or not it is installed.
    code = textwrap.dedent(
        """
        import sys

        class BlockNumpy:
            def find_spec(self, name, path=None, target=None):
                if name == "numpy" or name.startswith("numpy."):
                    raise ModuleNotFoundError("numpy is blocked", name=name)
                return None

        sys.meta_path.insert(0, BlockNumpy())
        from minirunner.dataset import DigitsDataset
        train, val = DigitsDataset("train"), DigitsDataset("val")
        assert len(train) + len(val) == 1797
        assert "numpy" not in sys.modules
        print("OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        "make_digits_data", REPO / "tools" / "make_digits_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stored_split_follows_the_documented_rule():
    tool = _load_tool()
    payload = load_digits_file()
    train, val = tool.stratified_split(payload["labels"].long())
    assert torch.equal(train, payload["train_indices"])
    assert torch.equal(val, payload["val_indices"])
    assert payload["format_version"] == tool.FORMAT_VERSION


@pytest.mark.slow
def test_regenerating_from_scikit_learn_gives_the_same_file(tmp_path):
    pytest.importorskip("sklearn")
    tool = REPO / "tools" / "make_digits_data.py"
    out = tmp_path / "digits.pt.gz"
    subprocess.run([sys.executable, str(tool), "--out", str(out)], check=True, timeout=120)
    assert out.read_bytes() == DIGITS_FILE.read_bytes()
