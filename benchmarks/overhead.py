"""How much slower the Runner is than a hand-written PyTorch loop doing the same work.

Work (issue 6): an MLP 32->64->10 on 8,192 in-memory samples, batch 64, SGD with momentum,
4 epochs, logging every 50 iterations. Both sides use the same dataset, batch size, collate
function, model and optimizer; the raw loop lacks only what the framework adds (the data
preprocessor, train_step and parse_losses, the optimizer wrapper, hooks, message hub,
logging, schedulers). The raw loop calls the model the way a hand-written loop would call
an MMEngine-style model: ``model(inputs, labels, mode='loss')['loss']``.

Runs alternate in one process (raw, runner, layers, then layers, runner, raw, ...) so that
machine load hits every side alike; the ratio of each pair is reported with its median and
spread. On a shared machine single runs vary by 20% and more, so the median of many pairs
is the figure to read.

A third run per repeat, 'layers', goes further than the criterion: it calls the model's
layers and ``F.cross_entropy`` directly, skipping even the model's own ``forward``. Its
ratio is printed for information; the criterion is the ratio to the raw loop.

Case 'plain' is the above. Case 'features' adds gradient accumulation (2), clipping by norm
and a linear warm-up followed by cosine annealing, on both sides.

    python benchmarks/overhead.py [--repeats 21] [--cases plain features] [--no-pin]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from minirunner.dataset import SyntheticClassification, default_collate
from minirunner.model import MLPClassifier
from minirunner.runner import Runner

EPOCHS, BATCH, SAMPLES, LOG_INTERVAL = 4, 64, 8192, 50
LR, MOMENTUM, ACCUMULATE, MAX_NORM, WARMUP = 0.05, 0.9, 2, 1.0, 20


def make_dataset() -> SyntheticClassification:
    return SyntheticClassification(num_samples=SAMPLES, num_features=32, num_classes=10, seed=0)


def raw_loop(dataset: SyntheticClassification, features: bool, layers_only: bool = False) -> float:
    """The hand-written loop; returns its wall time in seconds.

    ``layers_only`` calls the model's layers and the loss function directly instead of the
    model's ``forward(mode='loss')``.
    """
    torch.manual_seed(0)
    model = MLPClassifier(in_features=32, hidden_dims=(64,), num_classes=10)
    net = model.net
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, collate_fn=default_collate)
    max_iters = EPOCHS * len(loader)
    logger = logging.getLogger("raw-loop")
    start = time.perf_counter()
    step = 0
    for epoch in range(EPOCHS):
        for batch in loader:
            if layers_only:
                loss = F.cross_entropy(net(batch["inputs"]), batch["data_samples"])
            else:
                loss = model(batch["inputs"], batch["data_samples"], mode="loss")["loss"]
            if features:
                (loss / ACCUMULATE).backward()
                if (step + 1) % ACCUMULATE == 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
                    optimizer.step()
                    optimizer.zero_grad()
                # Warm-up by iteration, then cosine by iteration over the rest.
                if step < WARMUP:
                    factor = 0.1 + 0.9 * (step + 1) / WARMUP
                else:
                    factor = 0.5 * (1 + math.cos(math.pi * (step + 1 - WARMUP) / (max_iters - WARMUP)))
                for group in optimizer.param_groups:
                    group["lr"] = LR * factor
            else:
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            step += 1
            if step % LOG_INTERVAL == 0:
                logger.info(f"epoch {epoch} iter {step} loss {loss.item():.4f}")
    return time.perf_counter() - start


def runner_loop(dataset: SyntheticClassification, features: bool, work_dir: str) -> float:
    """The same work through the Runner; returns the wall time of ``train()`` in seconds."""
    optim_wrapper: dict = dict(optimizer=dict(type="SGD", lr=LR, momentum=MOMENTUM))
    param_scheduler = None
    if features:
        optim_wrapper.update(accumulative_counts=ACCUMULATE, clip_grad=dict(max_norm=MAX_NORM))
        param_scheduler = [
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=WARMUP),
            dict(type="CosineAnnealingLR", by_epoch=False, begin=WARMUP),
        ]
    runner = Runner(
        model=dict(type="MLPClassifier", in_features=32, hidden_dims=(64,), num_classes=10),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=dataset, batch_size=BATCH, sampler=dict(type="DefaultSampler", shuffle=True),
        ),
        train_cfg=dict(by_epoch=True, max_epochs=EPOCHS),
        optim_wrapper=optim_wrapper,
        param_scheduler=param_scheduler,
        default_hooks=dict(logger=dict(interval=LOG_INTERVAL), checkpoint=None),
        randomness=dict(seed=0),
        log_level="WARNING",  # lines are still built at each interval, only not printed
    )
    runner.train_loop  # build the dataloader before timing, as the raw loop does
    start = time.perf_counter()
    runner.train()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Runner overhead against a hand-written loop.")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the process to one core")
    parser.add_argument("--cases", nargs="+", default=["plain", "features"], choices=["plain", "features"])
    args = parser.parse_args()
    torch.set_num_threads(1)  # steadier timings; every side runs with the same setting
    if args.pin and hasattr(os, "sched_setaffinity"):
        # One core for the whole process: moving between cores mid-run adds noise to both sides.
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    logging.getLogger("raw-loop").setLevel(logging.WARNING)
    dataset = make_dataset()
    print(
        f"{'case':<10} {'raw (s)':>8} {'runner (s)':>11} {'runner/raw median':>18} {'min..max':>13}"
        f" {'runner/layers median':>21}"
    )
    for case in args.cases:
        features = case == "features"
        with tempfile.TemporaryDirectory() as work_dir:
            runs = {
                "raw": lambda: raw_loop(dataset, features),
                "runner": lambda: runner_loop(dataset, features, work_dir),
                "layers": lambda: raw_loop(dataset, features, layers_only=True),
            }
            for run in runs.values():  # warm-up of every path
                run()
            times: dict[str, list[float]] = {name: [] for name in runs}
            order = list(runs)
            for _ in range(args.repeats):
                for name in order:
                    times[name].append(runs[name]())
                order.reverse()  # raw, runner, layers, then the other way: neither goes first always
        ratios = [w / r for w, r in zip(times["runner"], times["raw"])]
        layer_ratios = [w / r for w, r in zip(times["runner"], times["layers"])]
        print(
            f"{case:<10} {statistics.median(times['raw']):>8.3f} {statistics.median(times['runner']):>11.3f}"
            f" {statistics.median(ratios):>18.3f} {min(ratios):>6.3f}..{max(ratios):.3f}"
            f" {statistics.median(layer_ratios):>21.3f}"
        )


if __name__ == "__main__":
    main()
