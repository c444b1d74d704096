"""Re-keying optimizer states between parameter indices (``optimizer.state_dict()``) and names
(``FSDPStrategy(state_dict='full')`` files), in one process."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minirunner.optim import OptimWrapper
from minirunner.strategy import BaseStrategy
from minirunner.strategy.optim_keys import keyed_by, rekey
from minirunner.utils import ConfigError


def trained() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    # Two groups, the second listing its parameters in another order than the model.
    optimizer = torch.optim.AdamW(
        [dict(params=[model[0].weight]), dict(params=[model[2].bias, model[2].weight, model[0].bias], lr=0.5)], lr=0.1
    )
    model(torch.randn(5, 3)).square().sum().backward()
    optimizer.step()
    return model, optimizer


def test_index_to_name_and_back_is_the_same_state():
    model, optimizer = trained()
    by_index = optimizer.state_dict()
    assert keyed_by(by_index) == "index"
    by_name = rekey(by_index, optimizer, model, to="name")
    assert keyed_by(by_name) == "name"
    assert by_name["param_groups"][1]["params"] == ["2.bias", "2.weight", "0.bias"]
    assert torch.equal(by_name["state"]["2.weight"]["exp_avg"], optimizer.state[model[2].weight]["exp_avg"])
    back = rekey(by_name, optimizer, model, to="index")
    assert back["param_groups"] == by_index["param_groups"]
    assert back["state"].keys() == by_index["state"].keys()
    for index, state in by_index["state"].items():
        for key, value in state.items():
            assert torch.equal(back["state"][index][key], value)


def test_the_base_strategy_loads_a_state_keyed_by_name():
    model, optimizer = trained()
    by_name = rekey(optimizer.state_dict(), optimizer, model, to="name")
    fresh_model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    fresh = torch.optim.AdamW(
        [dict(params=[fresh_model[0].weight]),
         dict(params=[fresh_model[2].bias, fresh_model[2].weight, fresh_model[0].bias], lr=0.5)], lr=0.1
    )
    BaseStrategy().load_optim_state_dict(fresh_model, OptimWrapper(fresh), by_name)
    assert torch.equal(fresh.state[fresh_model[2].weight]["exp_avg"], optimizer.state[model[2].weight]["exp_avg"])
    assert fresh.param_groups[1]["lr"] == 0.5


def test_other_groups_or_unknown_names_are_refused():
    model, optimizer = trained()
    by_name = rekey(optimizer.state_dict(), optimizer, model, to="name")
    by_name["param_groups"][1]["params"][0] = "9.bias"
    with pytest.raises(ConfigError, match=r"^optim_wrapper: the checkpoint's optimizer holds parameters this model lacks: 9.bias"):
        rekey(by_name, optimizer, model, to="index")
    by_name["param_groups"][1]["params"].pop()
    with pytest.raises(ConfigError, match=r"^optim_wrapper: the checkpoint's optimizer has parameter groups of \[1, 2\]"):
        rekey(by_name, optimizer, model, to="index")
