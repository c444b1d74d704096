"""Instructions per training iteration of the default path, counted by callgrind.

Wall-clock timings on a shared machine vary by 20 % and more; instruction counts do not.
The Runner trains a small MLP (IterBasedTrainLoop, default hooks, logging every 10
iterations, no checkpoints) for two run lengths, each under ``valgrind --tool=callgrind``
with one thread; the difference of the two totals divided by the difference of the
lengths is the cost of one iteration (start-up and imports cancel out).

    python benchmarks/instructions_per_iter.py [--short 100] [--long 300]

Needs valgrind. Takes a few minutes (callgrind runs some 50 times slower than native).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile


def train(iterations: int) -> None:
    """One run of ``iterations`` iterations (what callgrind measures)."""
    import torch

    torch.set_num_threads(1)
    from minirunner.runner import Runner

    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=dict(type="MLPClassifier", in_features=32, hidden_dims=(64,), num_classes=10),
            work_dir=work_dir,
            train_dataloader=dict(
                dataset=dict(type="SyntheticClassification", num_samples=512, num_features=32, num_classes=10),
                sampler=dict(type="DefaultSampler", shuffle=True),
                batch_size=16,
            ),
            train_cfg=dict(by_epoch=False, max_iters=iterations, val_interval=10**9),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01, momentum=0.9)),
            default_hooks=dict(checkpoint=None, progress=None, logger=dict(interval=10)),
            log_level="WARNING",
        )
        runner.train()


def instructions(iterations: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "callgrind.out")
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
             "--run", str(iterations)],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(out, encoding="utf-8") as handle:
            for line in handle:
                match = re.match(r"(?:summary|totals):\s+(\d+)", line)
                if match:
                    return int(match.group(1))
    raise RuntimeError("no total in the callgrind output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=300)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run is not None:
        train(args.run)
        return
    short, long = instructions(args.short), instructions(args.long)
    per_iter = (long - short) / (args.long - args.short)
    print(f"{args.short} iterations: {short:,} instructions; {args.long}: {long:,}")
    print(f"per iteration: {per_iter:,.0f} instructions")


if __name__ == "__main__":
    main()
