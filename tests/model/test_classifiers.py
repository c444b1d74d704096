"""The example classifiers: forward modes, prediction format, dropout, and digits training."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minirunner.dataset import DigitsDataset, build_dataloader
from minirunner.model import CNNClassifier, MLPClassifier
from minirunner.registry import MODELS
from minirunner.utils import ConfigError


@pytest.fixture
def one_thread():
    # Tiny models on a shared 2-core machine run far faster without intra-op threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_registered_and_built_from_config():
    model = MODELS.build(dict(type="MLPClassifier", in_features=4, hidden_dims=(8, 6)))
    assert isinstance(model, MLPClassifier)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 8), (8, 6), (6, 10)]
    assert isinstance(MODELS.build(dict(type="CNNClassifier")), CNNClassifier)


@pytest.mark.parametrize("cls", [MLPClassifier, CNNClassifier])
def test_loss_mode_is_cross_entropy_of_tensor_mode(cls):
    torch.manual_seed(0)
    model = cls(num_classes=5) if cls is CNNClassifier else cls(in_features=64, num_classes=5)
    model.eval()
    inputs = torch.randn(6, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    logits = model(inputs)
    assert logits.shape == (6, 5)
    losses = model(inputs, labels, mode="loss")
    assert list(losses) == ["loss"]
    assert torch.allclose(losses["loss"], F.cross_entropy(logits, labels))
    # Labels left unstacked by pseudo_collate (ints) and stacked inputs give the same loss.
    listed = model(list(inputs), [int(x) for x in labels], mode="loss")
    assert torch.allclose(listed["loss"], losses["loss"])


def test_predict_returns_one_dict_per_sample():
    torch.manual_seed(0)
    model = MLPClassifier(in_features=2, hidden_dims=(), num_classes=3)
    with torch.no_grad():
        model.net[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        model.net[1].bias.zero_()
    inputs = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    predictions = model(inputs, torch.tensor([0, 2]), mode="predict")
    assert len(predictions) == 2
    first, second = predictions
    assert set(first) == {"pred_label", "pred_score", "gt_label"}
    assert first["pred_label"].item() == 0 and second["pred_label"].item() == 1
    assert first["gt_label"].item() == 0 and second["gt_label"].item() == 2
    e2 = torch.exp(torch.tensor(2.0))
    expected = torch.stack([e2, torch.tensor(1.0), torch.tensor(1.0)]) / (e2 + 2)
    assert torch.allclose(first["pred_score"], expected)
    assert not first["pred_score"].requires_grad
    no_labels = model(inputs, mode="predict")
    assert "gt_label" not in no_labels[0]


def test_dropout_argument():
    assert not any(isinstance(m, nn.Dropout) for m in MLPClassifier().modules())
    assert not any(isinstance(m, nn.Dropout) for m in CNNClassifier().modules())
    mlp = MLPClassifier(hidden_dims=(16, 16), dropout=0.25)
    assert [m.p for m in mlp.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    cnn = CNNClassifier(dropout=0.5)
    assert [m.p for m in cnn.modules() if isinstance(m, nn.Dropout)] == [0.5]
    with pytest.raises(ConfigError) as info:
        MLPClassifier(dropout=1.0)
    assert info.value.key == "dropout"


def test_cnn_handles_several_image_sizes():
    model = CNNClassifier(in_channels=3, channels=(4, 8, 8), num_classes=7).eval()
    for size in (1, 3, 8, 32):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 7)
    assert model.net[-1].in_features == 8 * 2 * 2
    assert CNNClassifier(channels=(4,), pool_size=1).net[-1].in_features == 4


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode must be one of"):
        MLPClassifier()(torch.zeros(1, 64), mode="logits")
    with pytest.raises(ValueError, match="labels"):
        MLPClassifier()(torch.zeros(1, 64), mode="loss")


def _val_accuracy(model: nn.Module, val: DigitsDataset) -> float:
    model.eval()
    with torch.no_grad():
        correct = (model(val.inputs).argmax(1) == val.labels).sum().item()
    model.train()
    return 100.0 * correct / len(val)


def test_mlp_reaches_95_percent_on_digits_quickly(one_thread):
    torch.manual_seed(0)
    loader = build_dataloader(
        dict(
            dataset=dict(type="DigitsDataset", split="train"),
            sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
            batch_size=32,
        )
    )
    val = DigitsDataset("val")
    model = MLPClassifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    start = time.perf_counter()
    accuracies = []
    for epoch in range(5):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            loss = model(**batch, mode="loss")["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracies.append(_val_accuracy(model, val))
    elapsed = time.perf_counter() - start
    assert max(accuracies[-2:]) >= 95.0, accuracies
    assert elapsed < 20, f"5 epochs took {elapsed:.1f}s"


def test_cnn_learns_digits(one_thread):
    torch.manual_seed(0)
    train = DigitsDataset("train")
    val = DigitsDataset("val")
    model = CNNClassifier(channels=(16, 32))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), 64):
            index = order[start : start + 64]
            loss = model(train.inputs[index], train.labels[index], mode="loss")["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert _val_accuracy(model, val) >= 95.0
