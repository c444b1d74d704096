"""Every config shipped under configs/ is valid for any ``max_epochs >= 1`` and any number of
processes, and its warm-up lasts one epoch whatever the epoch length.

Two kinds of check:

- the dry run a user would start (``tools/train.py CONFIG --dry-run --cfg-options
  train_cfg.max_epochs=N``), one process, for N = 1 and 3: the config merges, every part
  builds (the schedulers included, with ``end`` filled from ``max_epochs``) and two iterations
  run;
- the whole schedule, built in-process from the config's ``param_scheduler`` and
  ``optim_wrapper``, for 1 and 2 processes and N = 1 and 3. Two processes are simulated: the
  epoch length is what the project's ``DefaultSampler`` gives rank 0 and rank 1 under a world
  size of 2, divided into batches as the DataLoader does. (A 2-process torchrun dry run per
  config costs ~15 s each; the schedule only depends on the epoch length, which this gives.)
  The schedulers are stepped as ``ParamSchedulerHook`` steps them: the iteration-based ones
  after every iteration, the epoch-based ones after every epoch.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minirunner import dist
from minirunner.config import Config
from minirunner.dataset import DefaultSampler
from minirunner.dataset import sampler as sampler_module
from minirunner.optim import build_optim_wrapper, build_param_schedulers

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.py"))
TORCHVISION = importlib.util.find_spec("torchvision") is not None
# Training-set sizes of the datasets the shipped configs use; CIFAR-10's is documented by
# torchvision (50,000 training images), so the schedule check needs neither torchvision nor the
# download. The digits' size comes from the dataset itself.
KNOWN_TRAIN_SIZES = {"CIFAR10": 50_000}


def _needs_torchvision(cfg: Config) -> bool:
    return cfg.train_dataloader.dataset.type != "DigitsDataset"


def _load(config: str, max_epochs: int) -> Config:
    cfg = Config.fromfile(str(REPO / config))
    cfg.merge_from_dict({"train_cfg.max_epochs": max_epochs})
    return cfg


def test_every_shipped_config_is_checked():
    assert {"configs/digits_mlp.py", "configs/digits_cnn_amp_accum.py", "configs/resnet18_cifar10.py"} <= set(CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize("max_epochs", [1, 3])
@pytest.mark.parametrize("config", CONFIGS)
def test_dry_run_with_max_epochs(config, max_epochs):
    cfg = _load(config, max_epochs)
    if _needs_torchvision(cfg):
        if not TORCHVISION:
            pytest.skip("torchvision is not installed")
        if not (REPO / cfg.train_dataloader.dataset.data_root).is_dir():
            pytest.skip(f"{cfg.train_dataloader.dataset.data_root} is not downloaded (tests never download)")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), str(REPO / config), "--dry-run",
         "--cfg-options", f"train_cfg.max_epochs={max_epochs}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "dry run finished" in result.stdout


def _train_size(cfg: Config) -> int:
    dataset = cfg.train_dataloader.dataset
    if dataset.type in KNOWN_TRAIN_SIZES:
        return KNOWN_TRAIN_SIZES[dataset.type]
    from minirunner.registry import DATASETS

    return len(DATASETS.build(dataset))


def _epoch_length(cfg: Config, world_size: int, monkeypatch) -> int:
    """Batches per epoch on every rank, from DefaultSampler under a simulated world size."""
    loader = cfg.train_dataloader
    assert loader.sampler.type == "DefaultSampler"
    size = _train_size(cfg)
    lengths = set()
    for rank in range(world_size):
        monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: world_size)
        monkeypatch.setattr(dist, "get_rank", lambda *a, rank=rank, **k: rank)
        sampler = DefaultSampler(range(size), shuffle=False, seed=0)
        assert sampler_module.dist is dist and sampler.world_size == world_size
        samples = len(sampler)
        batches = samples // loader.batch_size if loader.get("drop_last") else math.ceil(samples / loader.batch_size)
        lengths.add(batches)
    monkeypatch.undo()
    assert len(lengths) == 1, "every rank must run the same number of iterations"
    return lengths.pop()


def _lrs_over_the_run(cfg: Config, epoch_length: int) -> list[list[float]]:
    """The lr each iteration trains with, per epoch, stepping as ParamSchedulerHook does."""
    model = torch.nn.Linear(4, 2)
    optim_cfg = dict(cfg.optim_wrapper)
    if optim_cfg.get("type") == "AmpOptimWrapper" and not torch.cuda.is_available():
        optim_cfg["dtype"] = "bfloat16"  # as on CPU in a real run; the schedule is the same
    wrapper = build_optim_wrapper(model, optim_cfg)
    max_epochs = cfg.train_cfg.max_epochs
    schedulers = build_param_schedulers(
        cfg.param_scheduler, wrapper, epoch_length=epoch_length,
        max_epochs=max_epochs, max_iters=max_epochs * epoch_length,
    )
    by_iter = [s for s in schedulers if not s.by_epoch]
    by_epoch = [s for s in schedulers if s.by_epoch]
    epochs = []
    for _ in range(max_epochs):
        lrs = []
        for _ in range(epoch_length):
            lrs.append(wrapper.param_groups[0]["lr"])
            wrapper.optimizer.step()  # no gradients: changes nothing, but comes first as in training
            for scheduler in by_iter:
                scheduler.step()
        epochs.append(lrs)
        for scheduler in by_epoch:
            scheduler.step()
    return epochs


@pytest.mark.parametrize("max_epochs", [1, 3])
@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("config", CONFIGS)
def test_schedule_warms_up_for_one_epoch_then_decays(config, world_size, max_epochs, monkeypatch):
    cfg = _load(config, max_epochs)
    epoch_length = _epoch_length(cfg, world_size, monkeypatch)
    assert epoch_length >= 2
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == "LinearLR" and cosine.type == "CosineAnnealingLR"
    base = cfg.optim_wrapper.optimizer.lr
    eta_min = cosine.eta_min

    epochs = _lrs_over_the_run(cfg, epoch_length)

    assert len(epochs) == max_epochs
    first = epochs[0]
    # The warm-up covers exactly the first epoch of this world size's iterations: it starts
    # at start_factor * lr, rises every iteration and reaches the base lr at its last one.
    assert first[0] == pytest.approx(base * warmup.start_factor)
    assert all(b > a for a, b in zip(first, first[1:]))
    assert first[-1] == pytest.approx(base)
    # Then one value per epoch, following the cosine from the base lr to eta_min over the run.
    for epoch, lrs in enumerate(epochs[1:], start=1):
        expected = eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / max_epochs)) / 2
        assert lrs == pytest.approx([expected] * epoch_length)
    flat = [lr for lrs in epochs for lr in lrs]
    assert all(eta_min <= lr <= base * (1 + 1e-9) for lr in flat)


def test_two_processes_halve_the_warm_up_in_iterations(monkeypatch):
    """The point of counting the warm-up in epochs: its iteration count follows the epoch."""
    cfg = _load("configs/digits_mlp.py", 3)
    one = _epoch_length(cfg, 1, monkeypatch)
    two = _epoch_length(cfg, 2, monkeypatch)
    assert (one, two) == (math.ceil(1438 / 32), math.ceil(math.ceil(1438 / 2) / 32))
    for length in (one, two):
        first = _lrs_over_the_run(cfg, length)[0]
        assert first[-1] == pytest.approx(cfg.optim_wrapper.optimizer.lr)
        assert first[-2] < first[-1]
