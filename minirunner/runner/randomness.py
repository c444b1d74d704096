"""Seeding and the random-number-generator states saved in checkpoints."""

from __future__ import annotations

import random
from typing import Any

import torch

from minirunner.dist import broadcast_object, get_rank
from minirunner.utils import ConfigError

#: Seeds are limited to what every generator accepts (NumPy's legacy seeding takes
#: 0..2**32 - 1); the offsets added per epoch, worker and rank stay within torch's range.
MAX_SEED = 2**32 - 1


def sync_random_seed() -> int:
    """A random seed, the same on every rank (rank 0 draws it)."""
    return int(broadcast_object(random.SystemRandom().randint(0, 2**31 - 1)))


def set_random_seed(seed: int | None = None, deterministic: bool = False, diff_rank_seed: bool = False) -> int:
    """Seed Python, torch (CPU and CUDA) and NumPy if installed; return the seed used.

    Args:
        seed: None draws one (shared by all ranks).
        deterministic: also ask torch for deterministic algorithms (slower).
        diff_rank_seed: add the rank to the seed, so augmentations differ between ranks.

    Raises:
        ConfigError: (key ``randomness.seed``) for a seed that is not None or an int from 0
            to :data:`MAX_SEED`.
    """
    check_seed(seed)
    if seed is None:
        seed = sync_random_seed()
    if diff_rank_seed:
        seed += get_rank()
    random.seed(seed)
    torch.manual_seed(seed)  # Seeds every CUDA device too.
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def check_seed(seed: object) -> None:
    """Raise a :class:`ConfigError` naming ``randomness.seed`` unless ``seed`` is None or an
    int from 0 to :data:`MAX_SEED`.

    Checked up front because the generators disagree: ``random.seed('abc')`` hashes the
    string while ``torch.manual_seed`` fails on it; Python seeds with the absolute value of
    a negative int (so -1 and 1 would share a stream) while torch and NumPy wrap it; and a
    seed near torch's limit fails only once the per-epoch and per-worker offsets are added.
    """
    if seed is None:
        return
    # bool is an int subclass, but seed=True is a mistake, not the seed 1.
    if isinstance(seed, bool) or not isinstance(seed, int):
        fix = f"seed={int(seed)}" if isinstance(seed, float) and seed.is_integer() else "seed=0"
        raise ConfigError(
            f"must be an int from 0 to {MAX_SEED} or None (a random seed), got {seed!r} "
            f"({type(seed).__name__}); write e.g. {fix}",
            key="randomness.seed",
        )
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"must be an int from 0 to {MAX_SEED} or None (a random seed), got {seed}; pick a "
            "seed in that range",
            key="randomness.seed",
        )


def get_rng_state() -> dict[str, Any]:
    """The state of every generator the run draws from, as tensors and plain types."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy

        name, keys, pos, has_gauss, cached = numpy.random.get_state()
        state["numpy"] = [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached]
    except ImportError:
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned (generators it lacks are left alone)."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        try:
            import numpy
        except ImportError:
            return
        name, keys, pos, has_gauss, cached = state["numpy"]
        numpy.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
