"""`BaseModel`: the model interface the runner and its loops call."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from minirunner.registry import MODELS, config_key
from minirunner.utils import ConfigError

from .base_module import BaseModule
from .data_preprocessor import BaseDataPreprocessor
from .plain_call import hookless


def build_data_preprocessor(cfg: Mapping | nn.Module | None) -> nn.Module:
    """Turn the ``data_preprocessor`` argument of a model into a module.

    None gives a :class:`BaseDataPreprocessor`; a dict is built from ``MODELS`` (its
    ``type`` defaults to ``'BaseDataPreprocessor'``); a module is used as it is.
    """
    if cfg is None:
        return BaseDataPreprocessor()
    if isinstance(cfg, nn.Module):
        return cfg
    if isinstance(cfg, Mapping):
        cfg = dict(cfg)
        cfg.setdefault("type", "BaseDataPreprocessor")
        with config_key("data_preprocessor"):
            return MODELS.build(cfg)
    raise ConfigError(
        f"must be a dict config, an nn.Module or None, got {type(cfg).__name__}; write it "
        "as dict(type='ImgDataPreprocessor', mean=[...], std=[...])",
        key="data_preprocessor",
    )


class BaseModel(BaseModule):
    """Base class of models trained by the runner.

    A subclass implements :meth:`forward` with three modes; the runner never calls
    ``forward`` directly but goes through :meth:`train_step`, :meth:`val_step` and
    :meth:`test_step`, which run the data preprocessor first.

    Args:
        data_preprocessor: a module, a dict config built from ``MODELS`` (``type``
            defaults to ``'BaseDataPreprocessor'``), or None for a
            :class:`BaseDataPreprocessor` that only moves the batch to the model's device.
        init_cfg: the weight initialisation config :meth:`init_weights` applies (see
            :class:`~minirunner.model.BaseModule`); None keeps PyTorch's defaults.

    Example:
        >>> import torch.nn.functional as F
        >>> class Net(BaseModel):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = torch.nn.Linear(4, 3)
        ...     def forward(self, inputs, data_samples=None, mode='tensor'):
        ...         logits = self.fc(inputs)
        ...         if mode == 'loss':
        ...             return dict(loss=F.cross_entropy(logits, data_samples))
        ...         return logits
        >>> net = Net()
        >>> net(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        data_preprocessor: Mapping | nn.Module | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.data_preprocessor = build_data_preprocessor(data_preprocessor)

    @abstractmethod
    def forward(
        self, inputs: Any, data_samples: Any = None, mode: str = "tensor"
    ) -> Any:
        """Run the model on a preprocessed batch.

        Args:
            inputs: the batch's ``inputs`` (usually a stacked tensor).
            data_samples: the batch's ``data_samples`` (labels, annotations), or None.
            mode: ``'tensor'`` returns the raw outputs; ``'loss'`` returns a dict of loss
                tensors (keys containing ``'loss'`` are summed into the loss that is
                back-propagated, the others are only logged); ``'predict'`` returns
                predictions for the evaluator.
        """

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One training iteration: preprocess, forward, parse losses, update parameters.

        The preprocessor and forward pass run inside ``optim_wrapper.optim_context``
        (autocast, and no gradient sync on accumulation steps); the backward pass runs
        outside it, in ``optim_wrapper.update_params``.

        Returns:
            the log variables: ``loss`` plus every entry the model returned, as detached
            tensors. Nothing is copied to the host here, so the step never waits for the
            device; the logger converts the values at its own interval.
        """
        # `_modules[...]` is what `self.data_preprocessor` resolves to, without the detour
        # through nn.Module.__getattr__ on every iteration.
        preprocess = self._modules["data_preprocessor"]
        forward = self
        if hookless(preprocess, self):
            # No hook, compile or trace to honour: each `forward` directly, without the two
            # frames of nn.Module.__call__ (checked every iteration; a new hook is called).
            preprocess, forward = preprocess.forward, self.forward
        context = optim_wrapper.optim_context(self)
        if type(context) is nullcontext:
            # Nothing to enter (no autocast, no no_sync): skipping the `with` saves the
            # context's two Python calls on every iteration.
            data = preprocess(data, True)
            # The usual batch, a dict of exactly `inputs` and `data_samples`, goes as two named
            # arguments: unpacking `**data` copies the dict and re-enters the interpreter,
            # which on a small model costs more than this test (see _forward_loss).
            if type(data) is dict and len(data) == 2 and "inputs" in data and "data_samples" in data:
                losses = forward(inputs=data["inputs"], data_samples=data["data_samples"], mode="loss")
            else:
                losses = _forward_loss(self, forward, data)
        else:
            with context:
                losses = _forward_loss(self, forward, preprocess(data, True))
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    def val_step(self, data: Any) -> Any:
        """Preprocess ``data`` (``training=False``) and return ``forward(mode='predict')``."""
        data = self.data_preprocessor(data, False)
        return self._run_forward(data, mode="predict")

    def test_step(self, data: Any) -> Any:
        """The same as :meth:`val_step`; override it when testing differs from validation."""
        data = self.data_preprocessor(data, False)
        return self._run_forward(data, mode="predict")

    def parse_losses(
        self, losses: Mapping[str, Any]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Reduce the loss dict from ``forward(mode='loss')`` to the loss to back-propagate.

        Each value is averaged (a list of tensors becomes the sum of their means); the
        entries whose key contains ``'loss'`` are summed into the total loss.

        Returns:
            ``(loss, log_vars)``: the total loss (with its graph) and a dict whose first
            entry is ``'loss'`` (the total), followed by every reduced entry, all detached.
            When the model itself returns a key named exactly ``'loss'`` next to other loss
            keys, ``log_vars['loss']`` is still the total.

        Example:
            >>> class M(BaseModel):
            ...     def forward(self, inputs, data_samples=None, mode='tensor'): ...
            >>> loss, log_vars = M().parse_losses(
            ...     dict(loss_cls=torch.tensor([1.0, 3.0]), loss_box=[torch.tensor(1.0)] * 2,
            ...          acc=torch.tensor(0.5)))
            >>> loss, log_vars['loss_cls'], log_vars['loss_box'], log_vars['acc']
            (tensor(4.), tensor(2.), tensor(2.), tensor(0.5000))
        """
        if len(losses) == 1:
            # The usual case, dict(loss=<0-d tensor>), costs one detach and no loop.
            value = losses.get("loss")
            if type(value) is torch.Tensor and value.dim() == 0:
                return value, {"loss": value.detach()}
        reduced: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                # Skipping the mean of a scalar saves a kernel launch per key and iteration.
                value = value if value.dim() == 0 else value.mean()
            elif isinstance(value, (list, tuple)) and all(
                isinstance(item, torch.Tensor) for item in value
            ):
                parts = value
                value = parts[0].mean() if parts else torch.zeros(())
                for part in parts[1:]:
                    value = value + part.mean()
            else:
                raise TypeError(
                    f"forward(mode='loss') returned {type(value).__name__} for '{name}'; "
                    "each value must be a tensor or a list of tensors"
                )
            reduced[name] = value
            if "loss" in name:
                total = value if total is None else total + value
        if total is None:
            raise ValueError(
                "forward(mode='loss') returned no key containing 'loss' (got "
                f"{list(losses)}); name the loss to back-propagate e.g. 'loss' or 'loss_cls'"
            )
        log_vars = {"loss": total.detach()}
        for name, value in reduced.items():
            if name != "loss":
                log_vars[name] = value.detach()
        return total, log_vars

    def _run_forward(self, data: Any, mode: str) -> Any:
        if type(data) is dict or isinstance(data, Mapping):  # the exact check is the cheap one
            return self(**data, mode=mode)
        if isinstance(data, (list, tuple)):
            return self(*data, mode=mode)
        raise TypeError(
            "the data preprocessor must return a dict (passed to forward as keyword "
            f"arguments) or a list/tuple (passed positionally), got {type(data).__name__}"
        )


def _forward_loss(model: BaseModel, forward: Any, data: Any) -> Any:
    """``forward(**data, mode='loss')`` for a preprocessed batch ``data`` (a dict), or its
    items as positional arguments (a list or tuple; see ``BaseModel._run_forward``)."""
    if type(data) is dict:
        return forward(**data, mode="loss")
    return model._run_forward(data, mode="loss")
