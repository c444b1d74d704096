"""BaseModule.init_weights (MMEngine's order, once only), the init_cfg-aware containers,
and BaseModel accepting init_cfg."""

from __future__ import annotations

import logging

import torch
from torch import nn

from minirunner.model import BaseModel, BaseModule, MLPClassifier, ModuleDict, ModuleList, Sequential


class Leaf(BaseModule):
    def __init__(self, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.fc = nn.Linear(3, 3)


class Custom(nn.Module):
    """A plain module with its own init_weights: MMEngine calls it too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.calls = 0

    def init_weights(self) -> None:
        self.calls += 1
        nn.init.constant_(self.fc.weight, 7.0)


class Tree(BaseModule):
    def __init__(self, init_cfg=None, leaf_cfg=None) -> None:
        super().__init__(init_cfg)
        self.leaf = Leaf(leaf_cfg)
        self.custom = Custom()
        self.plain = nn.Linear(3, 3)


def test_no_init_cfg_keeps_pytorch_defaults():
    torch.manual_seed(0)
    model = Tree()
    model.custom.init_weights = lambda: None  # isolate the BaseModule part
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.init_weights()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.is_init and model.leaf.is_init


def test_parent_cfg_applies_to_all_layers_then_children_override():
    model = Tree(init_cfg=dict(type="Constant", val=1, layer="Linear"),
                 leaf_cfg=dict(type="Constant", val=2, layer="Linear"))
    model.init_weights()
    assert torch.all(model.plain.weight == 1)
    assert torch.all(model.leaf.fc.weight == 2)  # the child's own cfg runs after the parent's
    assert torch.all(model.custom.fc.weight == 7) and model.custom.calls == 1


def test_init_weights_runs_once_and_warns(caplog):
    model = Tree(init_cfg=dict(type="Constant", val=1, layer="Linear"))
    model.init_weights()
    nn.init.constant_(model.plain.weight, 5.0)
    with caplog.at_level(logging.WARNING, logger="minirunner"):
        model.init_weights()
    assert torch.all(model.plain.weight == 5.0)
    assert "more than once" in caplog.text


def test_an_initialised_child_is_skipped():
    model = Tree(leaf_cfg=dict(type="Constant", val=2, layer="Linear"))
    model.leaf.is_init = True
    before = model.leaf.fc.weight.clone()
    model.init_weights()
    assert torch.equal(model.leaf.fc.weight, before)


def test_init_cfg_is_deep_copied():
    cfg = dict(type="Constant", val=1, layer="Linear")
    model = Leaf(cfg)
    cfg["val"] = 3
    model.init_weights()
    assert torch.all(model.fc.weight == 1)
    assert "init_cfg=" in repr(model)


def test_containers_take_their_own_init_cfg():
    seq = Sequential(nn.Linear(2, 2), nn.Linear(2, 2), init_cfg=dict(type="Constant", val=3, layer="Linear"))
    lst = ModuleList([nn.Linear(2, 2)], init_cfg=dict(type="Constant", val=4, layer="Linear"))
    dct = ModuleDict(dict(a=nn.Linear(2, 2)), init_cfg=dict(type="Constant", val=5, layer="Linear"))
    outer = Sequential(seq, lst, dct)
    outer.init_weights()
    assert torch.all(seq[1].weight == 3) and torch.all(lst[0].weight == 4) and torch.all(dct["a"].weight == 5)
    assert seq(torch.zeros(1, 2)).shape == (1, 2) and len(lst) == 1 and list(dct) == ["a"]


def test_base_model_takes_init_cfg_positionally_second():
    class Net(BaseModel):
        def __init__(self, data_preprocessor=None, init_cfg=None):
            super().__init__(data_preprocessor, init_cfg)
            self.fc = nn.Linear(2, 2)

        def forward(self, inputs, data_samples=None, mode="tensor"):
            return self.fc(inputs)

    net = Net(None, dict(type="Constant", val=2, layer="Linear"))
    assert isinstance(net, BaseModule)
    net.init_weights()
    assert torch.all(net.fc.weight == 2)


def test_builtin_classifier_accepts_init_cfg():
    model = MLPClassifier(in_features=4, hidden_dims=(3,), num_classes=2,
                          init_cfg=dict(type="Constant", val=0.5, bias=0, layer="Linear"))
    model.init_weights()
    assert all(torch.all(m.weight == 0.5) for m in model.modules() if isinstance(m, nn.Linear))
