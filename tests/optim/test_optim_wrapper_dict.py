"""OptimWrapperDict: a read-only mapping of named wrappers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from minirunner.optim.wrappers import OptimWrapper, OptimWrapperDict
from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError


def _gan():
    torch.manual_seed(0)
    gen, disc = nn.Linear(2, 2), nn.Linear(2, 1)
    wrappers = OptimWrapperDict(
        gen=OptimWrapper(torch.optim.SGD(gen.parameters(), lr=0.01, momentum=0.9)),
        disc=OptimWrapper(torch.optim.Adam(disc.parameters(), lr=0.002, betas=(0.5, 0.999)),
                          accumulative_counts=2),
    )
    return gen, disc, wrappers


def test_behaves_as_a_read_only_mapping():
    _, _, wrappers = _gan()
    assert list(wrappers) == ["gen", "disc"]
    assert len(wrappers) == 2 and "gen" in wrappers and "other" not in wrappers
    assert wrappers["disc"].accumulative_counts == 2
    assert [name for name, _ in wrappers.items()] == ["gen", "disc"]
    assert all(isinstance(w, OptimWrapper) for w in wrappers.values())
    with pytest.raises(TypeError):
        wrappers["new"] = wrappers["gen"]
    with pytest.raises(KeyError, match=r"no optimizer wrapper named 'generator'; have 'disc', "
                                       r"'gen'"):
        wrappers["generator"]


def test_get_lr_and_get_momentum_are_prefixed_by_name():
    _, _, wrappers = _gan()
    assert wrappers.get_lr() == {"gen.lr": [0.01], "disc.lr": [0.002]}
    assert wrappers.get_momentum() == {"gen.momentum": [0.9], "disc.momentum": [0.5]}


def test_several_param_groups_show_a_prefixed_base_lr():
    model = nn.ModuleDict(dict(a=nn.Linear(1, 1), b=nn.Linear(1, 1)))
    grouped = OptimWrapper(torch.optim.SGD(
        [{"params": model.a.parameters()}, {"params": model.b.parameters(), "lr": 0.5}], lr=0.1))
    wrappers = OptimWrapperDict(net=grouped)
    assert wrappers.get_lr() == {"net.lr": [0.1, 0.5], "net.base_lr": [0.1]}


def test_state_dict_round_trip_by_name():
    gen, disc, wrappers = _gan()
    for _ in range(2):
        wrappers["gen"].update_params(gen(torch.randn(3, 2)).pow(2).mean())
        wrappers["disc"].update_params(disc(torch.randn(3, 2)).pow(2).mean())
    state = copy.deepcopy(wrappers.state_dict())
    assert set(state) == {"gen", "disc"}
    assert set(state["gen"]) == {"state", "param_groups"}

    gen2, disc2 = copy.deepcopy(gen), copy.deepcopy(disc)
    fresh = OptimWrapperDict(
        gen=OptimWrapper(torch.optim.SGD(gen2.parameters(), lr=1.0, momentum=0.9)),
        disc=OptimWrapper(torch.optim.Adam(disc2.parameters(), lr=1.0)))
    fresh.load_state_dict(state)
    assert fresh.get_lr() == {"gen.lr": [0.01], "disc.lr": [0.002]}
    assert torch.equal(fresh["gen"].optimizer.state[gen2.weight]["momentum_buffer"],
                       wrappers["gen"].optimizer.state[gen.weight]["momentum_buffer"])
    # disc stepped once (k=2 over two iterations): Adam's step count is 1.
    assert float(fresh["disc"].optimizer.state[disc2.weight]["step"]) == 1.0


def test_load_state_dict_with_other_names_lists_them():
    _, _, wrappers = _gan()
    state = wrappers.state_dict()
    state["critic"] = state.pop("disc")
    with pytest.raises(ConfigError, match=r"^state_dict: the saved state has wrappers 'critic', "
                                          r"'gen', but this OptimWrapperDict has 'disc', 'gen' "
                                          r"\(missing: 'disc'; unexpected: 'critic'\)"):
        wrappers.load_state_dict(state)


def test_load_state_dict_names_the_wrapper_whose_state_does_not_fit():
    _, _, wrappers = _gan()
    state = wrappers.state_dict()
    state["gen"] = {"oops": 1}
    with pytest.raises(ConfigError, match=r"^gen.state_dict: expected an optimizer state dict"):
        wrappers.load_state_dict(state)


def test_initialize_count_status_reaches_every_wrapper():
    gen, _, wrappers = _gan()
    wrappers.initialize_count_status(gen, 4, 9)
    assert [w.inner_count for w in wrappers.values()] == [4, 4]
    assert [w.max_counts for w in wrappers.values()] == [9, 9]


@pytest.mark.parametrize("method", ["update_params", "backward", "step", "optim_context"])
def test_training_methods_point_to_the_named_wrapper(method):
    gen, _, wrappers = _gan()
    with pytest.raises(NotImplementedError,
                       match=rf"OptimWrapperDict.{method}\(\) is ambiguous: it holds 'disc', "
                             rf"'gen'. Call it on the wrapper you mean, e.g. "
                             rf"optim_wrapper\['gen'\].{method}\(...\)"):
        getattr(wrappers, method)(gen)


def test_values_must_be_wrappers():
    with pytest.raises(ConfigError, match=r"^disc: expected an OptimWrapper, got SGD"):
        OptimWrapperDict(disc=torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1))


def test_registered_and_readable():
    assert OPTIM_WRAPPERS.get("OptimWrapperDict") is OptimWrapperDict
    _, _, wrappers = _gan()
    text = repr(wrappers)
    # As in the reference: "name: <name>" before each wrapper's own repr.
    assert text.startswith("name: gen\n" + repr(wrappers["gen"]))
    assert "\nname: disc\n" + repr(wrappers["disc"]) in text
