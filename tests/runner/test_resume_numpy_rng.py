"""With NumPy installed, its global generator is saved and restored too (skipped without NumPy).

NumPy is optional: to run this, use an environment that has it, e.g. a throwaway venv with
NumPy that also sees this one's packages.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from minirunner.hooks import Hook
from minirunner.registry import DATASETS
from minirunner.runner import Runner

numpy = pytest.importorskip("numpy")


@DATASETS.register_module(name="ResumeNumpyJitter")
class NumpyJitter(Dataset):
    """Inputs jittered with NumPy's global generator (in the main process: num_workers=0)."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int) -> dict:
        jitter = float(numpy.random.uniform(-0.1, 0.1))
        return dict(inputs=torch.full((4,), float(index % 5) + jitter), data_samples=torch.tensor(index % 2))


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=dict(type="ResumeNumpyJitter"),
                              sampler=dict(type="DefaultSampler", shuffle=True), batch_size=4),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=3)),
        randomness=dict(seed=1),
    )
    cfg.update(overrides)
    return cfg


class Crash(Exception):
    pass


class CrashAfter(Hook):
    priority = "LOWEST"

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == 7:
            raise Crash


def test_numpy_generator_resumes_exactly(tmp_path):
    straight = Runner(**_cfg(tmp_path / "straight"))
    straight.train()
    with pytest.raises(Crash):
        Runner(**_cfg(tmp_path / "run", custom_hooks=[CrashAfter()])).train()
    assert "numpy" in torch.load(tmp_path / "run" / "iter_6.pth", weights_only=True)["rng"]
    resumed = Runner(**_cfg(tmp_path / "run", resume=True))
    resumed.train()
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
