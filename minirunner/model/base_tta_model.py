"""`BaseTTAModel`: test-time augmentation, running a model on every augmented view of a batch
and merging the predictions."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from minirunner.registry import MODELS
from minirunner.utils import ConfigError

from .base_model import BaseModel


class TTAModuleTypeError(ConfigError, TypeError):
    """``module`` of a TTA model is neither a model nor a model config (a ``TypeError``
    in the reference, so both classes catch it)."""

    def __str__(self) -> str:
        return self._message()


@MODELS.register_module()
class BaseTTAModel(BaseModel):
    """Wraps a model for testing with test-time augmentation (TTA).

    A TTA pipeline turns each sample into several augmented views, so a collated batch
    holds one entry per view::

        dict(inputs=[[img1_view1, img2_view1], [img1_view2, img2_view2]],
             data_samples=[[ds1_view1, ds2_view1], [ds1_view2, ds2_view2]])

    :meth:`test_step` splits it into one ordinary batch per view
    (``dict(inputs=[img1_view1, img2_view1], data_samples=[...])``), runs the wrapped
    model's ``test_step`` on each, and hands :meth:`merge_preds` the predictions grouped
    by sample: ``[(pred1_view1, pred1_view2), (pred2_view1, pred2_view2)]``. A tuple or
    list batch is split the same way, position by position.

    Subclasses implement :meth:`merge_preds`. ``PrepareTTAHook`` (or
    ``tools/test.py --tta``) builds the subclass with the tested model as ``module``.

    Args:
        module: the tested model, or its config (built from ``MODELS``).
        data_preprocessor: the preprocessor given to ``module`` when it is a config
            without one. The TTA model itself never preprocesses: ``module.test_step``
            does.

    Example:
        >>> class MeanScores(BaseTTAModel):
        ...     def merge_preds(self, data_samples_list):
        ...         return [sum(views) / len(views) for views in data_samples_list]
    """

    def __init__(self, module: Mapping | nn.Module, data_preprocessor: Mapping | nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(module, nn.Module):
            self.module = module
        elif isinstance(module, Mapping):
            module = dict(module)
            if data_preprocessor is not None:
                module.setdefault("data_preprocessor", data_preprocessor)
            self.module = MODELS.build(module)
        else:
            raise TTAModuleTypeError(
                f"must be a model (nn.Module) or a model config dict, got {type(module).__name__} {module!r}",
                key="module",
            )
        if not callable(getattr(self.module, "test_step", None)):
            raise TTAModuleTypeError(
                f"the wrapped {type(self.module).__name__} has no test_step(); wrap a BaseModel "
                "(or a model wrapper around one)",
                key="module",
            )

    @abstractmethod
    def merge_preds(self, data_samples_list: list[list[Any]]) -> list[Any]:
        """Merge the predictions of every view of each sample into one prediction per sample.

        Args:
            data_samples_list: one sequence per sample (a tuple, as in the reference),
                holding that sample's prediction for each view, in view order.

        Returns:
            One merged prediction per sample.
        """

    def test_step(self, data: Any) -> list[Any]:
        """Run the wrapped model on each view of ``data`` and merge the predictions."""
        if isinstance(data, Mapping):
            if not data:
                raise ValueError("BaseTTAModel.test_step got an empty batch dict")
            num_views = len(next(iter(data.values())))
            views: list[Any] = [{key: value[i] for key, value in data.items()} for i in range(num_views)]
        elif isinstance(data, (tuple, list)):
            num_views = len(data[0])
            views = [[item[i] for item in data] for i in range(num_views)]
        else:
            raise TypeError(
                f"BaseTTAModel.test_step expects a dict, tuple or list batch from the dataloader, "
                f"got {type(data).__name__}"
            )
        predictions = [self.module.test_step(view) for view in views]
        # Regroup view-major predictions into one list of views per sample.
        return self.merge_preds(list(zip(*predictions)))

    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> Any:
        """Not used: a TTA model only tests, through :meth:`test_step`."""
        raise NotImplementedError("BaseTTAModel.forward is not used; call test_step()")
