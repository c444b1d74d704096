"""One rank of the EMA training job of the strategy tests: ``python fsdp_ema_job.py RANK WORLD_SIZE
PORT WORK_DIR MODE BATCH_SIZE [KEY=JSON ...]``.

The job of ``fsdp_job.py`` (same model, data, accumulation, clipping and schedules; MODE ``fsdp``,
``ddp`` or ``single``) with an ``EMAHook`` and a validation every 4 iterations whose metric is
made of the model's logits on 16 samples. Rank 0 writes ``final.pt`` (the model's full weights
after training; ``initial.pt``: before), ``ema.pt`` (the EMA hook's full averages, ``ema_state_dict()``, or nothing
without an EMA hook; ``ema_initial.pt``: as training starts) and ``val.json`` (the metrics of each validation). Each rank prints how many
elements of the averages it holds. KEY=JSON: ``ema`` (the EMAHook's arguments, ``null`` for
none), ``reshard_after_forward`` (FSDP), ``probe_single_file`` (``true``: rank 0 also writes
``single_file.pt``, what the hook's ``before_save_checkpoint`` makes of a checkpoint whose
``state_dict`` holds whole tensors), ``checkpoint`` (CheckpointHook arguments), or a
top-level config key.
"""

from __future__ import annotations

import gc
import json
import os
import sys

import torch

from fsdp_job import config, full_weights  # noqa: F401 (registers the model)
from minirunner.evaluator import BaseMetric
from minirunner.hooks import EMAHook, Hook
from minirunner.registry import HOOKS, METRICS
from minirunner.runner import Runner


@METRICS.register_module(force=True)
class LogitMoments(BaseMetric):
    """The mean and mean square of the logits: they change with every weight of the model."""

    def process(self, data_batch, data_samples) -> None:
        for logits in data_samples:
            self.results.append(logits.tolist())

    def compute_metrics(self, results: list) -> dict:
        values = [value for row in results for value in row]
        return dict(logit_mean=sum(values) / len(values), logit_square=sum(v * v for v in values) / len(values))


@HOOKS.register_module(force=True)
class RecordMetrics(Hook):
    """Rank 0 writes each validation's metrics to ``WORK_DIR/val.json``."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.metrics: list[dict] = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics.append(dict(iter=runner.iter, **(metrics or {})))
        if runner.rank == 0:
            with open(os.path.join(runner.work_dir, "val.json"), "w") as handle:
                json.dump(self.metrics, handle)


@HOOKS.register_module(force=True)
class SaveInitialAverages(Hook):
    """Rank 0 writes the EMA's averages as training starts (after a resume or load_from) to
    ``WORK_DIR/ema_initial.pt``."""

    priority = "LOWEST"

    def before_train(self, runner) -> None:
        for hook in runner._hooks:
            if isinstance(hook, EMAHook):
                averages = full_averages(hook)[0]
                if runner.rank == 0:
                    torch.save(averages, os.path.join(runner.work_dir, "ema_initial.pt"))


def full_averages(hook: EMAHook) -> tuple[dict, int, int]:
    """Every rank calls it: the averages as whole tensors, and how many elements this rank
    holds of how many in all."""
    from torch.distributed.tensor import DTensor

    full, held, total = {}, 0, 0
    for key, value in hook.ema_state_dict().items():
        if isinstance(value, DTensor):
            held += value.to_local().numel()
            value = value.full_tensor()
        else:
            held += value.numel()
        total += value.numel()
        full[key] = value.detach().clone()
    return full, held, total


def main() -> None:
    rank, world_size, port, work_dir, mode, batch_size = sys.argv[1:7]
    if mode != "single":
        os.environ.update(
            RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank, MASTER_ADDR="127.0.0.1", MASTER_PORT=port
        )
    cfg = config(work_dir, mode, int(batch_size))
    cfg["train_cfg"]["val_interval"] = 4
    cfg["val_dataloader"] = dict(
        dataset=dict(type="SyntheticClassification", num_samples=16, num_features=16, num_classes=3, seed=1),
        sampler=dict(type="DefaultSampler", shuffle=False),
        batch_size=4,
    )
    cfg["val_cfg"] = dict()
    cfg["val_evaluator"] = dict(type="LogitMoments")
    ema, probe = dict(momentum=0.2), False
    cfg["custom_hooks"] = [dict(type="SaveInitialWeights"), dict(type="SaveInitialAverages"), dict(type="RecordMetrics")]
    for item in sys.argv[7:]:
        key, value = item.split("=", 1)
        value = json.loads(value)
        if key == "ema":
            ema = value
        elif key == "reshard_after_forward":
            cfg["strategy"]["shard"]["reshard_after_forward"] = value
        elif key == "probe_single_file":
            probe = value
        elif key == "checkpoint":
            cfg["default_hooks"]["checkpoint"].update(value)
        else:
            cfg[key] = value
    if ema is not None:
        cfg["custom_hooks"].append(dict(type="EMAHook", **ema))
    runner = Runner.from_cfg(cfg)
    runner.train()
    weights = full_weights(runner)
    hooks = [hook for hook in runner._hooks if isinstance(hook, EMAHook)]
    if hooks:
        averages, held, total = full_averages(hooks[0])
        print(f"ema elements held: {held} of {total}")
        if int(rank) == 0:
            torch.save(averages, os.path.join(work_dir, "ema.pt"))
        if probe:  # what the hook adds to a single file of whole tensors (state_dict='full')
            single_file = {"state_dict": full_weights(runner)}
            hooks[0].before_save_checkpoint(runner, single_file)
            if int(rank) == 0:
                torch.save(single_file, os.path.join(work_dir, "single_file.pt"))
    if int(rank) == 0:
        torch.save(weights, os.path.join(work_dir, "final.pt"))
    print(f"strategy: {type(runner.strategy).__name__}")
    del runner, weights, hooks  # as fsdp_job.py: free the groups while Python is fully alive
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
