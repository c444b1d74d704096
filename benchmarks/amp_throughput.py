"""Training throughput with AMP: the Runner against a hand-written autocast + GradScaler loop.

Both sides train the same ResNet-18-shaped network (basic residual blocks, widths 64 to 512 at
``--width 64``; defined here, so torchvision is not needed) with SGD and momentum on the same
in-memory ``uint8`` images, fetched a batch at a time from a pinned DataLoader (when CUDA is
used), copied with ``non_blocking=True`` and normalised on the device:

- ``runner``: ``Runner.train()`` with its default hooks (logging every 50 iterations; the
  checkpoint hook left out: saving is not per-iteration work), ``AmpOptimWrapper`` with the
  dtype, ``ImgDataPreprocessor``.
- ``loop``: ``torch.autocast`` + ``torch.amp.GradScaler`` (float16 only; bfloat16 needs no
  scaler), ``F.cross_entropy``, ``zero_grad(set_to_none=True)``: the loop from PyTorch's AMP
  recipe.

Each round trains both sides for ``--warmup`` + ``--iters`` iterations (the order alternates
between rounds) and times the last ``--iters`` (synchronising the device around them). The
figure to read is the median over the rounds of runner/loop images per second (goal: >= 0.98).

    python benchmarks/amp_throughput.py                    # CUDA: float16 and bfloat16
    python benchmarks/amp_throughput.py --dtypes bfloat16 --width 8 --image 32 --batch 16 --threads 1
        # the script on a CPU (bfloat16 autocast; one thread: steadier on a shared machine)
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time

import minirunner  # noqa: F401  (first: it quiets torch's NumPy warning on the CPU wheel)
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from minirunner.dataset import InMemoryDataset, collate_batched
from minirunner.hooks import Hook
from minirunner.model import BaseClassifier
from minirunner.registry import MODELS
from minirunner.runner import Runner

MEAN, STD = 127.5, 64.0
LR, MOMENTUM = 0.01, 0.9


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 convolution when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x), inplace=True)


def resnet18_shaped(width: int, num_classes: int) -> nn.Sequential:
    """ResNet-18's layout: a 7x7 stem, four stages of two blocks, average pooling, a linear head."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    channels = width
    for stage in range(4):
        out_channels = width * 2**stage
        for block in range(2):
            layers.append(BasicBlock(channels, out_channels, 2 if stage > 0 and block == 0 else 1))
            channels = out_channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


@MODELS.register_module(force=True)
class BenchResNet(BaseClassifier):
    """The benchmark's network as a Runner model (labels as ``data_samples``)."""

    def __init__(self, width: int, num_classes: int, data_preprocessor: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.net = resnet18_shaped(width, num_classes)


class Stopwatch(Hook):
    """Times the iterations after the first ``warmup`` ones, synchronising the device around them."""

    priority = "LOWEST"

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device, self.done, self.start, self.seconds = warmup, device, 0, 0.0, 0.0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.start = _synchronized_time(self.device)

    def after_train(self, runner) -> None:
        self.seconds = _synchronized_time(self.device) - self.start


def _synchronized_time(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def runner_speed(args: argparse.Namespace, dtype: str, data_file: str, work_dir: str, device: torch.device) -> float:
    """Images per second of ``Runner.train()`` over the timed iterations."""
    runner = Runner(
        model=dict(type="BenchResNet", width=args.width, num_classes=args.classes,
                   data_preprocessor=dict(type="ImgDataPreprocessor", mean=[MEAN] * 3, std=[STD] * 3,
                                          channels_last=args.channels_last)),
        work_dir=work_dir,
        train_dataloader=dict(dataset=dict(type="InMemoryDataset", file=data_file),
                              sampler=dict(type="InfiniteSampler", shuffle=True),
                              batch_size=args.batch, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=args.warmup + args.iters),
        optim_wrapper=dict(type="AmpOptimWrapper", dtype=dtype,
                           optimizer=dict(type="SGD", lr=LR, momentum=MOMENTUM)),
        default_hooks=dict(logger=dict(type="LoggerHook", interval=50), checkpoint=None),
        env_cfg=dict(cudnn_benchmark=True),
        log_level="WARNING",
    )
    if args.channels_last:
        runner.model.to(memory_format=torch.channels_last)
    stopwatch = Stopwatch(args.warmup, device)
    runner.register_hook(stopwatch)
    runner.train()
    return args.iters * args.batch / stopwatch.seconds


def loop_speed(args: argparse.Namespace, dtype: str, data_file: str, device: torch.device) -> float:
    """Images per second of the hand-written AMP loop over the timed iterations."""
    torch.backends.cudnn.benchmark = True
    cast = getattr(torch, dtype)
    model = resnet18_shaped(args.width, args.classes).to(device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    scaler = torch.amp.GradScaler(device.type, enabled=cast is torch.float16)
    loader = DataLoader(InMemoryDataset(file=data_file), batch_size=args.batch, shuffle=True, drop_last=True,
                        collate_fn=collate_batched, pin_memory=device.type == "cuda")
    batches = itertools.chain.from_iterable(itertools.repeat(loader))
    start = 0.0
    model.train()
    for step in range(args.warmup + args.iters):
        if step == args.warmup:
            start = _synchronized_time(device)
        batch = next(batches)
        images = batch["inputs"].to(device, non_blocking=True)
        labels = batch["data_samples"].to(device, non_blocking=True)
        images = ((images.float() - MEAN) / STD).contiguous(memory_format=memory_format)
        with torch.autocast(device.type, dtype=cast):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return args.iters * args.batch / (_synchronized_time(device) - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float16", "bfloat16"], choices=["float16", "bfloat16"])
    parser.add_argument("--width", type=int, default=64, help="channels of the first stage (ResNet-18: 64)")
    parser.add_argument("--image", type=int, default=224, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1024, help="images held in memory")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per side and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--channels-last", action="store_true", help="both sides in the channels-last format")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and "float16" in args.dtypes:
        parser.error("float16 autocast needs CUDA here; on a CPU use --dtypes bfloat16")

    generator = torch.Generator().manual_seed(0)
    data = dict(
        inputs=torch.randint(0, 256, (args.samples, 3, args.image, args.image), dtype=torch.uint8, generator=generator),
        data_samples=torch.randint(0, args.classes, (args.samples,), generator=generator),
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}; ResNet-18 shape, width {args.width}, {args.image}px, "
          f"batch {args.batch}, {args.iters} timed iterations after {args.warmup}, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as folder:
        data_file = os.path.join(folder, "images.pt")
        torch.save(data, data_file)
        for dtype in args.dtypes:
            ratios = []
            for round_index in range(args.rounds):
                work_dir = os.path.join(folder, f"{dtype}_{round_index}")
                speeds = {}
                # The side that runs first alternates, so drift in the machine's speed hits both.
                for side in (("runner", "loop") if round_index % 2 == 0 else ("loop", "runner")):
                    if side == "runner":
                        speeds[side] = runner_speed(args, dtype, data_file, work_dir, device)
                    else:
                        speeds[side] = loop_speed(args, dtype, data_file, device)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                ratios.append(speeds["runner"] / speeds["loop"])
                print(f"{dtype} round {round_index + 1}: runner {speeds['runner']:8.1f} img/s  "
                      f"loop {speeds['loop']:8.1f} img/s  ratio {ratios[-1]:.3f}")
            print(f"{dtype}: runner/loop median {statistics.median(ratios):.3f} "
                  f"(range {min(ratios):.3f}-{max(ratios):.3f}) over {args.rounds} rounds")


if __name__ == "__main__":
    main()
