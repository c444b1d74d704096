"""Images per second of ``configs/resnet18_cifar10.py`` (torchvision's ResNet-18, 32x32 inputs)
with 0 and 2 dataloader workers.

The config is trained as shipped (random crop and flip in the workers, ``ImgDataPreprocessor``,
``AmpOptimWrapper``) on CIFAR-10 files in torchvision's own format, generated into a temporary
folder by the generator the vision tests use; validation and checkpoints are left out. The
iterations after ``--warmup`` are timed, synchronising the device around them. Needs torchvision
(run it with the vision environment's Python: ``make setup-vision``):

    .venv-vision/bin/python benchmarks/vision_throughput.py --batch 32 --iters 20
    .venv-vision/bin/python benchmarks/vision_throughput.py --fp32    # OptimWrapper, no autocast
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import minirunner  # noqa: F401  (first: it quiets torch's NumPy warning on the CPU wheel)
import torch

from amp_throughput import Stopwatch  # this folder is on the path when a script here runs
from minirunner.config import Config
from minirunner.runner import Runner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from vision_support import write_cifar10  # noqa: E402  (the tests' CIFAR-10 writer)


def images_per_second(args: argparse.Namespace, data_root: Path, work_dir: str, workers: int) -> float:
    """Train the shipped config for ``warmup + iters`` iterations; images per second of the timed ones."""
    cfg = Config.fromfile(str(REPO / "configs" / "resnet18_cifar10.py"))
    cfg.work_dir = work_dir
    cfg.log_level = "WARNING"
    loader = cfg.train_dataloader
    loader.batch_size, loader.num_workers = args.batch, workers
    loader.pin_memory = torch.cuda.is_available()
    loader.dataset.update(data_root=str(data_root), download=False, verify=False)
    cfg.train_cfg = dict(by_epoch=False, max_iters=args.warmup + args.iters)
    cfg.param_scheduler = None
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint = None
    if args.fp32:
        cfg.optim_wrapper.type = "OptimWrapper"
    runner = Runner.from_cfg(cfg)
    device = next(runner.model.parameters()).device
    stopwatch = Stopwatch(args.warmup, device)
    runner.register_hook(stopwatch)
    runner.train()
    return args.iters * args.batch / stopwatch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--fp32", action="store_true", help="OptimWrapper instead of the config's AMP")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    precision = "float32" if args.fp32 else "the config's AMP"
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads; ResNet-18 on 32x32, "
          f"batch {args.batch}, {precision}, {args.iters} timed iterations after {args.warmup}")
    with tempfile.TemporaryDirectory() as folder:
        images = (args.warmup + args.iters) * args.batch
        data_root = write_cifar10(Path(folder) / "cifar", per_batch=max(1, images // 5), test_size=10)
        for workers in args.workers:
            speed = images_per_second(args, data_root, str(Path(folder) / f"work_{workers}"), workers)
            print(f"num_workers={workers}: {speed:.1f} images/s")


if __name__ == "__main__":
    main()
