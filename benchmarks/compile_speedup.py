"""Steady-state training speed of a config with ``compile`` against the same config eager.

Two runners are built from the config (one with ``compile``), with the same initial weights,
optimizer wrapper (accumulation, clipping, AMP as configured) and batches. Each first runs
``--warmup`` iterations (the compiled one compiles there, and its shapes settle), then timed
blocks of ``--iters`` iterations alternate (eager, compiled, eager, ...) so that drift in
machine speed hits both alike. Reported: iterations/s of each block, and the median ratio
compiled/eager over the pairs with its spread.

    python benchmarks/compile_speedup.py configs/digits_cnn_amp_accum.py             # as configured
    python benchmarks/compile_speedup.py configs/digits_cnn_amp_accum.py --no-amp    # float32
    python benchmarks/compile_speedup.py configs/digits_mlp.py --compile "dict(mode='max-autotune')"
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import minirunner  # noqa: F401  (first: it quiets torch's NumPy warning on the CPU wheel)
import torch

from minirunner.config import Config
from minirunner.runner import Runner


def _runner(cfg: Config, work_dir: str, compile_value) -> Runner:
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.compile = compile_value
    runner = Runner.from_cfg(cfg)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    return runner


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _run(runner: Runner, batches: list, device: torch.device) -> float:
    """Iterations per second over ``batches``."""
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        runner.model.train_step(batch, runner.optim_wrapper)
    _sync(device)
    return len(batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--compile", default="True", help="the compile value: True or dict(...) (default True)")
    parser.add_argument("--no-amp", action="store_true", help="use a plain OptimWrapper (float32)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--iters", type=int, default=100, help="iterations per timed block")
    parser.add_argument("--rounds", type=int, default=5, help="timed blocks per variant")
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        # On a shared machine, two threads per process spin against other jobs' threads.
        torch.set_num_threads(args.threads)

    cfg = Config.fromfile(args.config)
    if args.no_amp:
        cfg.optim_wrapper.type = "OptimWrapper"
        cfg.optim_wrapper.pop("dtype", None)
    with tempfile.TemporaryDirectory() as folder:
        eager = _runner(cfg, f"{folder}/eager", None)
        compiled = _runner(cfg, f"{folder}/compiled", eval(args.compile, {"dict": dict}))  # a literal or dict(...)
        compiled.model.load_state_dict(eager.model.state_dict())
        compiled.optim_wrapper.load_state_dict(eager.optim_wrapper.state_dict())
        loader = eager.train_dataloader
        batches = []
        while len(batches) < args.warmup + args.iters:
            batches.extend(loader)
        total = args.warmup + 2 * args.rounds * args.iters
        device = next(eager.model.parameters()).device
        for runner in (eager, compiled):
            runner.optim_wrapper.initialize_count_status(runner.model, 0, total)
            runner.model.train()
            start = time.perf_counter()
            _run(runner, batches[: args.warmup], device)
            print(f"{'compiled' if runner is compiled else 'eager':8s} warm-up {args.warmup} iterations: "
                  f"{time.perf_counter() - start:.1f} s")
        timed = batches[args.warmup : args.warmup + args.iters]
        ratios = []
        for round_index in range(args.rounds):
            eager_speed = _run(eager, timed, device)
            compiled_speed = _run(compiled, timed, device)
            ratios.append(compiled_speed / eager_speed)
            print(f"round {round_index + 1}: eager {eager_speed:7.1f} it/s  compiled {compiled_speed:7.1f} it/s  "
                  f"ratio {ratios[-1]:.2f}")
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"compiled/eager: median {statistics.median(ratios):.2f} (range {spread}) over {args.rounds} pairs "
              f"of {args.iters} iterations; torch {torch.__version__}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
