"""The Runner applies the model's init_cfg when training starts, before load_from/resume."""

from __future__ import annotations

import torch

from minirunner.hooks import Hook
from minirunner.runner import Runner
from runner_support import loader_cfg


class FirstWeights(Hook):
    def __init__(self) -> None:
        self.seen = None

    def before_train(self, runner) -> None:
        self.seen = {k: v.clone() for k, v in runner.model.state_dict().items()}


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2,
                   init_cfg=dict(type="Constant", val=0.25, bias=0.5, layer="Linear")),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(4, 2),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(logger=dict(interval=1000)),
    )
    cfg.update(overrides)
    return cfg


def test_train_applies_init_cfg_before_the_first_iteration(tmp_path):
    probe = FirstWeights()
    runner = Runner(**_cfg(tmp_path / "a", custom_hooks=[probe]))
    runner.train()
    weights = [v for k, v in probe.seen.items() if k.endswith("weight")]
    biases = [v for k, v in probe.seen.items() if k.endswith("bias")]
    assert weights and all(torch.all(w == 0.25) for w in weights)
    assert biases and all(torch.all(b == 0.5) for b in biases)


def test_load_from_wins_over_init_cfg(tmp_path):
    first = Runner(**_cfg(tmp_path / "a"))
    first.train()
    trained = {k: v.clone() for k, v in first.model.state_dict().items()}
    probe = FirstWeights()
    Runner(**_cfg(tmp_path / "b", load_from=str(tmp_path / "a" / "epoch_1.pth"), custom_hooks=[probe])).train()
    for key, value in trained.items():
        assert torch.equal(probe.seen[key], value), key
