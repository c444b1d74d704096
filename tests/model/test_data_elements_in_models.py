"""Data elements flow through the data preprocessor and the built-in classifiers."""

from __future__ import annotations

import torch

from minirunner.dataset import pseudo_collate
from minirunner.model import BaseDataPreprocessor, MLPClassifier
from minirunner.structures import BaseDataElement


def test_preprocessor_moves_data_elements():
    pre = BaseDataPreprocessor()
    pre.to(torch.float64)  # dtype only: the device stays the CPU
    sample = BaseDataElement(metainfo=dict(id=1), gt_label=torch.tensor(2))
    out = pre(dict(inputs=torch.zeros(1, 2), data_samples=[sample]))
    assert isinstance(out["data_samples"][0], BaseDataElement)
    assert out["data_samples"][0].id == 1 and out["data_samples"][0].gt_label.item() == 2


def test_classifier_reads_gt_label_of_data_elements():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=4, hidden_dims=(), num_classes=3)
    samples = [BaseDataElement(gt_label=torch.tensor([label])) for label in (0, 2)]
    batch = pseudo_collate([dict(inputs=torch.rand(4), data_samples=s) for s in samples])
    assert batch["data_samples"] == samples  # pseudo_collate keeps them as a list
    inputs = torch.stack(batch["inputs"])
    loss = model(inputs, batch["data_samples"], mode="loss")["loss"]
    expected = torch.nn.functional.cross_entropy(model(inputs), torch.tensor([0, 2]))
    assert torch.allclose(loss, expected)
    predictions = model(inputs, batch["data_samples"], mode="predict")
    assert [p["gt_label"].item() for p in predictions] == [0, 2]
