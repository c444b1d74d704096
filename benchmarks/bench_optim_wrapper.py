"""Time ``OptimWrapper.update_params`` against the plain PyTorch training step.

Both variants train the same model on the same batches; each timed run does ``--iters``
full iterations (forward, loss, backward, step, zero_grad). Runs alternate (plain, wrapper,
plain, wrapper, ...) so that drift in machine speed hits both alike, and the ratio
wrapper/plain is reported per pair with its median and spread.

    python benchmarks/bench_optim_wrapper.py                    # CPU, small and medium MLP
    python benchmarks/bench_optim_wrapper.py --device cuda --clip
"""

from __future__ import annotations

import argparse
import statistics
import time

import minirunner  # noqa: F401  (first: it quiets torch's NumPy warning on the CPU wheel)
import torch
from torch import nn
from torch.nn import functional as F

from minirunner.optim.wrappers import OptimWrapper


def _model(width: int, depth: int, device: str) -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers).to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _plain_run(model, optimizer, batches, clip: float | None) -> None:
    for x, y in batches:
        loss = F.mse_loss(model(x), y)
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        optimizer.zero_grad()


def _wrapper_run(model, wrapper, batches) -> None:
    for x, y in batches:
        with wrapper.optim_context(model):
            loss = F.mse_loss(model(x), y)
        wrapper.update_params(loss)


def _timed(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench(width: int, depth: int, batch: int, iters: int, repeats: int, device: str,
          clip: float | None) -> None:
    """Print the per-iteration times and the wrapper/plain ratio for one model size."""
    torch.manual_seed(0)
    plain_model = _model(width, depth, device)
    wrapped_model = _model(width, depth, device)
    wrapped_model.load_state_dict(plain_model.state_dict())
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=1e-3, momentum=0.9)
    wrapper = OptimWrapper(
        torch.optim.SGD(wrapped_model.parameters(), lr=1e-3, momentum=0.9),
        clip_grad=None if clip is None else dict(max_norm=clip))
    batches = [(torch.randn(batch, width, device=device), torch.randn(batch, 1, device=device))
               for _ in range(iters)]

    def plain() -> None:
        _plain_run(plain_model, plain_opt, batches, clip)

    def wrapped() -> None:
        _wrapper_run(wrapped_model, wrapper, batches)

    plain()  # warm-up: allocator, optimizer state, kernels
    wrapped()
    plain_times, wrapped_times, ratios = [], [], []
    for repeat in range(repeats):
        # Alternate which goes first, so neither always follows the other.
        if repeat % 2 == 0:
            p, w = _timed(plain, device), _timed(wrapped, device)
        else:
            w, p = _timed(wrapped, device), _timed(plain, device)
        plain_times.append(p / iters)
        wrapped_times.append(w / iters)
        ratios.append(w / p)
    ratios.sort()
    spread = (ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4])
    params = sum(p.numel() for p in plain_model.parameters())
    # On a shared machine the fastest run of each variant is the least disturbed one.
    best_plain, best_wrapped = min(plain_times), min(wrapped_times)
    print(
        f"width={width:4d} depth={depth} batch={batch:3d} params={params:>8,d} clip={clip}\n"
        f"  plain         median {statistics.median(plain_times) * 1e6:9.1f} us/iter, "
        f"best {best_plain * 1e6:9.1f}\n"
        f"  update_params median {statistics.median(wrapped_times) * 1e6:9.1f} us/iter, "
        f"best {best_wrapped * 1e6:9.1f}\n"
        f"  ratio update_params/plain: median of pairs {statistics.median(ratios):.3f} "
        f"(IQR {spread[0]:.3f}-{spread[1]:.3f}, min {ratios[0]:.3f}, max {ratios[-1]:.3f}, "
        f"n={repeats}); best/best {best_wrapped / best_plain:.3f}, overhead "
        f"{(best_wrapped - best_plain) * 1e6:+.1f} us/iter"
    )


class _NoopOptimizer(torch.optim.Optimizer):
    """An optimizer whose step and zero_grad do nothing: isolates the wrapper's own cost."""

    def __init__(self, params) -> None:
        super().__init__(params, {"lr": 0.1})

    def step(self, closure=None) -> None:
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None


class _NoopLoss:
    requires_grad = True

    def backward(self) -> None:
        return None


def bench_overhead(iters: int, repeats: int) -> None:
    """Time the wrapper's Python overhead alone: no compute in backward, step or zero_grad."""
    model = nn.Linear(1, 1)
    optimizer = _NoopOptimizer(model.parameters())
    wrapper = OptimWrapper(optimizer)
    loss = _NoopLoss()

    def plain() -> None:
        for _ in range(iters):
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    def wrapped() -> None:
        for _ in range(iters):
            with wrapper.optim_context(model):
                pass
            wrapper.update_params(loss)

    plain_best = min(_timed(plain, "cpu") for _ in range(repeats)) / iters
    wrapped_best = min(_timed(wrapped, "cpu") for _ in range(repeats)) / iters
    print(f"overhead only (no-op backward/step/zero_grad): plain {plain_best * 1e6:.2f} us/iter, "
          f"optim_context + update_params {wrapped_best * 1e6:.2f} us/iter, "
          f"added {(wrapped_best - plain_best) * 1e6:+.2f} us/iter")


def main() -> None:
    """Parse the arguments and run the benchmark for a small and a medium model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iters", type=int, default=100, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=21, help="timed runs per variant")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--clip", action="store_true", help="also clip by norm (max_norm=1)")
    args = parser.parse_args()
    clip = 1.0 if args.clip else None
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    # Small: framework overhead dominates. Medium: a realistic share of compute.
    bench(16, 2, 8, args.iters, args.repeats, args.device, clip)
    bench(256, 3, 64, max(1, args.iters // 4), args.repeats, args.device, clip)
    bench_overhead(10_000, 15)


if __name__ == "__main__":
    main()
