"""Start-of-run summaries: the parameter-group table and the environment block."""

from __future__ import annotations

import sys

import torch
from torch import nn

import minirunner
from minirunner.logging.summary import collect_env, format_environment, format_param_groups
from minirunner.optim import OptimWrapper, OptimWrapperDict


def _rows(table: str) -> list[list[str]]:
    """The body rows of a rich table, as stripped cell texts."""
    rows = []
    for line in table.splitlines():
        if line.startswith("│"):
            rows.append([cell.strip() for cell in line.strip("│").split("│")])
    return rows


def test_groups_with_equal_settings_share_a_row():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(
        [
            {"params": [model[0].weight], "lr": 0.1},
            {"params": [model[0].bias], "lr": 0.2, "weight_decay": 0.0},
            {"params": [model[1].weight], "lr": 0.1},
            {"params": [model[1].bias], "lr": 0.2, "weight_decay": 0.0},
        ],
        lr=0.1, momentum=0.9, weight_decay=1e-4,
    )
    rows = _rows(format_param_groups(model, OptimWrapper(optimizer)))
    assert rows == [
        ["SGD", "0, 2", "0.weight, 1.weight", "20", "0.1", "0.0001", "0.9"],  # 3*4 + 4*2 elements
        ["SGD", "1, 3", "0.bias, 1.bias", "6", "0.2", "0", "0.9"],
        # With several groups the wrapper keeps the optimizer's defaults as a last,
        # parameterless group (base_lr); it trains nothing and is not listed (issue 21, item 4).
    ]
    assert not OptimWrapper(optimizer).param_groups[-1]["params"]  # it is there, unlisted


def test_long_parameter_lists_are_shortened_and_adam_shows_beta1():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2))
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.99)))
    (row,) = _rows(format_param_groups(model, wrapper))
    assert row == ["AdamW", "0", "0.weight, 0.bias, 1.weight (+3)", "18", "0.001", "0.01", "0.8"]


def test_several_optimizers_are_named():
    gen, disc = nn.Linear(2, 2), nn.Linear(2, 1)
    wrappers = OptimWrapperDict(
        gen=OptimWrapper(torch.optim.SGD(gen.parameters(), lr=0.01)),
        disc=OptimWrapper(torch.optim.Adam(disc.parameters(), lr=0.02)),
    )
    model = nn.ModuleDict({"gen": gen, "disc": disc})
    rows = _rows(format_param_groups(model, wrappers))
    assert [row[0] for row in rows] == ["gen", "disc"]
    assert rows[0][2] == "gen.weight, gen.bias" and rows[0][4] == "0.01" and rows[0][6] == "0"
    assert rows[1][2] == "disc.weight, disc.bias" and rows[1][4] == "0.02" and rows[1][6] == "0.9"


def test_environment_block():
    env = collect_env()
    assert env["Python"] == sys.version.split()[0]
    assert env["PyTorch"] == torch.__version__
    assert env["minirunner"] == minirunner.__version__
    assert env["CUDA available"] == str(torch.cuda.is_available())
    text = format_environment({"Python": "3.11.7"}, {"device": "cpu", "world size": 1, "seed": 42})
    assert text.splitlines() == [
        "-" * 60,
        "System environment:",
        "    Python: 3.11.7",
        "Runtime environment:",
        "    device: cpu",
        "    world size: 1",
        "    seed: 42",
        "-" * 60,
    ]
