"""The validation and test loops: run the model in predict mode over a dataloader and
evaluate the predictions."""

from __future__ import annotations

from typing import Any

import torch

from minirunner.registry import LOOPS
from minirunner.utils import ConfigError

from .loops import BaseLoop, check_yields_batches
from .randomness import get_rng_state, set_rng_state


class _EvalLoop(BaseLoop):
    """Run the model over a dataloader in predict mode and evaluate the predictions."""

    mode = "val"

    def __init__(self, runner: Any, dataloader: Any, evaluator: Any, fp16: bool = False) -> None:
        if not isinstance(fp16, bool):
            raise ConfigError(
                f"must be True or False, got {fp16!r}; fp16=True runs the forward under autocast", key="fp16"
            )
        super().__init__(runner, dataloader)
        check_yields_batches(self.dataloader, f"{self.mode}_dataloader", every_rank=False)
        self.evaluator = runner.build_evaluator(evaluator) if isinstance(evaluator, (dict, list)) else evaluator
        self.fp16 = fp16
        # As in MMEngine: the metrics (and the visualizer) learn the dataset's classes etc.
        metainfo = getattr(getattr(self.dataloader, "dataset", None), "metainfo", None)
        if metainfo is not None:
            self.evaluator.dataset_meta = metainfo
            visualizer = getattr(runner, "visualizer", None)
            if visualizer is not None:
                visualizer.dataset_meta = metainfo

    def run(self) -> dict:
        """Evaluate and return the metrics.

        The random generators are restored afterwards: validating must not change what
        training draws next, or a run resumed at an epoch boundary (which skips that
        validation) would diverge from the uninterrupted one.
        """
        rng_state = get_rng_state()
        try:
            return self._run()
        finally:
            set_rng_state(rng_state)

    def _run(self) -> dict:
        runner = self.runner
        mode = self.mode
        runner.call_hook(f"before_{mode}")
        runner.call_hook(f"before_{mode}_epoch")
        runner.model.eval()
        for batch_idx, data_batch in enumerate(self.dataloader):
            self.run_iter(batch_idx, data_batch)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        runner.call_hook(f"after_{mode}_epoch", metrics=metrics)
        runner.call_hook(f"after_{mode}")
        return metrics

    @torch.no_grad()
    def run_iter(self, batch_idx: int, data_batch: Any) -> None:
        """Predict one batch and hand the predictions to the evaluator."""
        runner = self.runner
        runner.call_hook(f"before_{self.mode}_iter", batch_idx=batch_idx, data_batch=data_batch)
        device_type = _model_device_type(runner.model)
        with torch.autocast(device_type=device_type, enabled=self.fp16):
            step = runner.model.val_step if self.mode == "val" else runner.model.test_step
            outputs = step(data_batch)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        runner.call_hook(f"after_{self.mode}_iter", batch_idx=batch_idx, data_batch=data_batch, outputs=outputs)


def _model_device_type(model: torch.nn.Module) -> str:
    for parameter in model.parameters():
        return parameter.device.type
    return "cpu"


@LOOPS.register_module()
class ValLoop(_EvalLoop):
    """The validation loop; ``fp16=True`` runs the forward under autocast."""

    mode = "val"


@LOOPS.register_module()
class TestLoop(_EvalLoop):
    """The test loop; ``fp16=True`` runs the forward under autocast."""

    mode = "test"
