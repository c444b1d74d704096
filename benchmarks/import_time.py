"""How much `import minirunner` adds to `import torch`.

Each sample is a fresh interpreter that imports torch, then times the import of minirunner's
foundation packages on top of it, so only what minirunner itself adds is counted. The budget
(issue 2) is 0.3 s.

    python benchmarks/import_time.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

PROBE = """
import time, torch
start = time.perf_counter()
import minirunner, minirunner.config, minirunner.registry, minirunner.logging, minirunner.dist
print(time.perf_counter() - start)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="Time what `import minirunner` adds to `import torch`.")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    samples = []
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", PROBE], check=True, capture_output=True, text=True
        ).stdout
        samples.append(float(out.strip().splitlines()[-1]))
    print(
        f"import minirunner after torch: median {statistics.median(samples) * 1000:.1f} ms, "
        f"min {min(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms over {len(samples)} "
        "fresh interpreters (budget 300 ms)"
    )


if __name__ == "__main__":
    main()
