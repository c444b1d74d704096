"""configs/resnet18_cifar10.py end to end, as a user runs it: tools/train.py on CIFAR-10 files in
torchvision's own format (generated here), bf16 AMP on the CPU, checkpoints, an exact resume, and
tools/test.py on the checkpoint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from vision_support import write_cifar10

pytestmark = [pytest.mark.slow]  # tools/*.py in subprocesses

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "resnet18_cifar10.py"


def _data_options(root: Path) -> list[str]:
    """Point all three dataloaders at the generated copy: local, not downloaded, and, as the
    files are not the official ones, without the MD5 check."""
    options = []
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        options += [
            f"{loader}.dataset.data_root={root}",
            f"{loader}.dataset.download=False",
            f"{loader}.dataset.verify=False",
            f"{loader}.batch_size=5",  # bf16 convolutions on the CPU are slow
            f"{loader}.num_workers=0",
            f"{loader}.pin_memory=False",
        ]
    return options


# 15 training images in batches of 5: 3 iterations per epoch; 10 test images, 2 batches.
SCHEDULE = [
    "train_cfg.max_epochs=2",
    "train_cfg.val_interval=1",
    "default_hooks.logger.interval=1",
    "default_hooks.checkpoint.interval=1",
    "optim_wrapper.optimizer.lr=0.01",  # the config's 0.1 diverges on 40 random images
]


def _tool(script: str, *args, timeout: int = 400) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / script), *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar"), per_batch=3, test_size=10)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("train") / "work"
    result = _tool("train.py", CONFIG, "--work-dir", work, "--cfg-options", *_data_options(cifar), *SCHEDULE)
    return work, result


@pytest.mark.timeout(600)
def test_trains_two_epochs_with_bf16_amp_and_validates(trained):
    work, result = trained
    _ok(result)
    assert sorted(p.name for p in work.glob("epoch_*.pth")) == ["epoch_1.pth", "epoch_2.pth"]
    assert re.search(r"Epoch\(train\)\s+\[2\]\[3/3\]", result.stdout), result.stdout[-2000:]
    assert re.search(r"Epoch\(val\)\s+\[2\]\[2/2\]\s+accuracy/top1", result.stdout)
    checkpoint = torch.load(work / "epoch_2.pth", weights_only=True)
    assert checkpoint["meta"]["iter"] == 6
    # The CIFAR stem and the 10-class head of the config, trained (not the initial values).
    assert checkpoint["state_dict"]["net.conv1.weight"].shape == (64, 3, 3, 3)
    assert checkpoint["state_dict"]["net.fc.weight"].shape == (10, 512)
    first = torch.load(work / "epoch_1.pth", weights_only=True)["state_dict"]["net.fc.weight"]
    assert not torch.equal(first, checkpoint["state_dict"]["net.fc.weight"])
    assert "precision: AMP with bfloat16 autocast, no loss scaler" in result.stdout


@pytest.mark.timeout(600)
def test_resume_from_epoch_1_ends_with_the_same_weights(tmp_path, cifar, trained):
    work, result = trained
    _ok(result)
    resumed = tmp_path / "resumed"
    run = _tool(
        "train.py", CONFIG, "--work-dir", resumed, "--resume", work / "epoch_1.pth",
        "--cfg-options", *_data_options(cifar), *SCHEDULE,
    )
    _ok(run)
    assert re.search(r"resumed from .*epoch_1\.pth", run.stdout)
    assert "Epoch(train)  [1]" not in run.stdout and re.search(r"Epoch\(train\)\s+\[2\]\[3/3\]", run.stdout)
    straight = torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"]
    again = torch.load(resumed / "epoch_2.pth", weights_only=True)["state_dict"]
    assert straight.keys() == again.keys()
    for name in straight:
        assert torch.equal(straight[name], again[name]), name


@pytest.mark.timeout(600)
def test_test_tool_evaluates_the_checkpoint(tmp_path, cifar, trained):
    work, result = trained
    _ok(result)
    run = _tool("test.py", CONFIG, work / "epoch_2.pth", "--work-dir", tmp_path / "test",
                "--cfg-options", *_data_options(cifar))
    _ok(run)
    match = re.search(r"metrics: \{'accuracy/top1': ([\d.]+), 'accuracy/top5': ([\d.]+)\}", run.stdout)
    assert match, run.stdout[-2000:]

    # The same numbers from the checkpoint's weights, computed here on the 10 test images.
    from minirunner.registry import DATASETS, MODELS

    model = MODELS.build(dict(
        type="TorchvisionClassifier", arch="resnet18", num_classes=10, cifar_stem=True,
        data_preprocessor=dict(type="ImgDataPreprocessor", mean=[125.307, 122.961, 113.8575],
                               std=[51.5865, 50.847, 51.255]),
    ))
    model.load_state_dict(torch.load(work / "epoch_2.pth", weights_only=True)["state_dict"])
    model.eval()
    data = DATASETS.build(dict(type="CIFAR10", data_root=str(cifar), train=False, verify=False))
    batch = dict(inputs=torch.stack([data[i]["inputs"] for i in range(len(data))]),
                 data_samples=torch.tensor([data[i]["data_samples"] for i in range(len(data))]))
    with torch.no_grad():  # the test loop runs without autocast (test_cfg has no fp16=True)
        logits = model(**model.data_preprocessor(batch), mode="tensor")
    top5 = logits.topk(5, dim=1).indices
    labels = batch["data_samples"]
    expected_top1 = 100.0 * (top5[:, 0] == labels).float().mean().item()
    expected_top5 = 100.0 * (top5 == labels[:, None]).any(dim=1).float().mean().item()
    assert float(match.group(1)) == pytest.approx(expected_top1, abs=1e-4)
    assert float(match.group(2)) == pytest.approx(expected_top5, abs=1e-4)


def test_the_generated_files_fail_the_md5_check_with_one_clear_line(tmp_path, cifar):
    run = _tool("train.py", CONFIG, "--work-dir", tmp_path / "work", "--cfg-options",
                f"train_dataloader.dataset.data_root={cifar}", "train_dataloader.dataset.download=False")
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "train_dataloader.dataset.data_root" in lines[0] and "verify=False" in lines[0]
