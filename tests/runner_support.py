"""Config builders shared by the runner and hook tests (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys


def loader_cfg(
    num_samples: int,
    batch_size: int,
    shuffle: bool = True,
    num_features: int = 4,
    num_classes: int = 2,
    dataset: str = "SyntheticClassification",
) -> dict:
    """A dataloader config over a synthetic classification dataset with a DefaultSampler."""
    return dict(
        dataset=dict(type=dataset, num_samples=num_samples, num_features=num_features, num_classes=num_classes),
        sampler=dict(type="DefaultSampler", shuffle=shuffle),
        batch_size=batch_size,
    )


def file_hashes(folder) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too), relative path -> SHA-256 of its bytes:
    compare two of these to show that a folder was left byte-for-byte as it was."""
    found = {}
    for path in glob.glob(os.path.join(str(folder), "**"), recursive=True, include_hidden=True):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def run_ranks(script, args: list[str], world_size: int, timeout: float, env: dict | None = None) -> list[str]:
    """Run ``python script RANK *args`` once per rank (the processes of a gloo job), wait for
    all, and return each rank's output; fail, with that output, on a non-zero exit. ``{rank}``
    in an argument becomes the rank. Processes still running after a failure are killed."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", str(script), str(rank),
             *(str(arg).replace("{rank}", str(rank)) for arg in args)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in range(world_size)
    ]
    outputs = []
    try:
        for rank, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=timeout)
            outputs.append(out)
            assert proc.returncode == 0, f"rank {rank} failed:\n{out}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return outputs
