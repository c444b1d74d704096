"""Turn a sharded checkpoint directory (FSDPStrategy, DCP) into one ordinary checkpoint file.

    python tools/consolidate_checkpoint.py work_dirs/run/iter_1000 model.pth

OUT holds ``meta`` and ``state_dict`` (the whole model's tensors), in minirunner's usual
format: ``torch.load(OUT, weights_only=True)`` reads it, and ``load_from=OUT`` (any strategy,
one device included) or ``tools/test.py`` use it. For a run with an ``EMAHook`` it is laid
out as a single-file checkpoint of such a run: ``state_dict`` holds the averaged weights and
``ema_state_dict`` the training weights (``'module.<name>'`` and ``'steps'``). The optimizer state is left out (add
``--with-optimizer`` to keep it, keyed by parameter name as DCP saves it). One process, no GPU:
the whole model must fit in this machine's memory.

DCP's own ``dcp_to_torch_save`` does the same, but unpickles the metadata with plain pickle;
this tool reads it through minirunner's safe reader, so a crafted directory is refused.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
warnings.filterwarnings("ignore", message="torch.distributed is disabled")

from minirunner.checkpoint import CheckpointError, load_checkpoint_dir, load_full_state, save_checkpoint_file  # noqa: E402


def consolidate(directory: str, out: str, with_optimizer: bool = False) -> dict:
    """Write ``out`` from checkpoint directory ``directory``; returns what was written."""
    state = load_checkpoint_dir(directory)  # verifies the directory first
    tensors = load_full_state(directory)
    checkpoint = {"meta": state.get("meta", {}), "state_dict": tensors["model"]}
    if "ema_state_dict" in tensors:
        checkpoint["ema_state_dict"] = tensors["ema_state_dict"]
    if with_optimizer and "optimizer" in tensors:
        checkpoint["optimizer_by_name"] = tensors["optimizer"]
    save_checkpoint_file(checkpoint, out)
    return checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="a sharded checkpoint directory (iter_N/ or epoch_N/)")
    parser.add_argument("out", help="the checkpoint file to write, e.g. model.pth")
    parser.add_argument("--with-optimizer", action="store_true", help="keep the optimizer state too")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        print(f"error: {args.out} exists; name a new file", file=sys.stderr)
        return 2
    try:
        checkpoint = consolidate(args.directory, args.out, args.with_optimizer)
    except (CheckpointError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(checkpoint['state_dict'])} tensors of the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
