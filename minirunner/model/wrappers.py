"""Model wrappers for distributed training, and how a model gets one under torchrun."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from minirunner.logging import print_log
from minirunner.registry import MODEL_WRAPPERS, config_key
from minirunner.utils import ConfigError, did_you_mean, quoted_list

# Newer torch renames broadcast_buffers to forward_sync_buffers and warns about the old name.
_DDP_HAS_FORWARD_SYNC = "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters

MODEL_WRAPPERS.register_module(module=DistributedDataParallel)


def wrapped_train_step(wrapper: nn.Module, forward: nn.Module, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
    """The ``train_step`` of a distributed wrapper around ``wrapper.module``: preprocess,
    run ``forward`` (the wrapper itself when its forward communicates, as DDP's does; else
    the module) under ``optim_wrapper.optim_context(wrapper)``, so accumulation iterations
    enter the wrapper's ``no_sync()``, then parse the losses and update the parameters."""
    module = wrapper.module
    with optim_wrapper.optim_context(wrapper):
        data = module.data_preprocessor(data, True)
        if isinstance(data, Mapping):
            losses = forward(**data, mode="loss")
        else:
            losses = forward(*data, mode="loss")
    loss, log_vars = module.parse_losses(losses)
    optim_wrapper.update_params(loss)
    return log_vars


@MODEL_WRAPPERS.register_module(name=["MiniDistributedDataParallel", "MMDistributedDataParallel"])
class MiniDistributedDataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that speaks the runner's ``train_step`` interface.

    Built by the runner under a launcher as ``dict(type='MiniDistributedDataParallel')``
    (the reference's name ``'MMDistributedDataParallel'`` is an alias) with the model as
    ``module``; every other argument goes to ``DistributedDataParallel``.

    :meth:`train_step` calls the wrapper itself (not the wrapped module) for the forward
    pass, so DDP's hooks all-reduce the gradients, and passes the wrapper to
    ``optim_wrapper.optim_context`` so that accumulation steps run under ``no_sync()``.
    :meth:`val_step` and :meth:`test_step` need no communication and call the wrapped
    module's own.
    """

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """Preprocess, forward through DDP, parse losses and update the parameters."""
        return wrapped_train_step(self, self, data, optim_wrapper)

    def val_step(self, data: Any) -> Any:
        """The wrapped model's ``val_step``."""
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        """The wrapped model's ``test_step``."""
        return self.module.test_step(data)


def is_model_wrapper(model: nn.Module) -> bool:
    """True when ``model`` is an instance of a class registered in ``MODEL_WRAPPERS``
    (or a child registry of it), i.e. the real model is ``model.module``."""
    pending = [MODEL_WRAPPERS]
    while pending:
        registry = pending.pop()
        for obj in registry.module_dict.values():
            if isinstance(obj, type) and isinstance(model, obj):
                return True
        pending.extend(registry.children.values())
    return False


def wrap_distributed(
    model: nn.Module,
    wrapper_cfg: Mapping | None = None,
    find_unused_parameters: bool | None = None,
    sync_bn: bool | str | None = None,
) -> nn.Module:
    """Wrap ``model`` for data-parallel training in an initialised process group.

    Args:
        model: the model, already on this rank's device.
        wrapper_cfg: the config's ``model_wrapper_cfg``, a ``MODEL_WRAPPERS`` config whose
            other keys go to the wrapper (``find_unused_parameters``, ``broadcast_buffers``,
            ...); a missing ``type`` means ``'MiniDistributedDataParallel'``. None gives the
            reference's default: that wrapper without buffer broadcasts at every forward.
        find_unused_parameters: the config's top-level key; passed to DDP wrappers unless
            ``wrapper_cfg`` sets it.
        sync_bn: True (or the reference's ``'torch'``) converts BatchNorm layers to
            ``SyncBatchNorm``. On CPU, where torch's SyncBatchNorm cannot train, the layers
            stay as they are, with a warning.

    DDP wrappers get ``device_ids=[the current GPU]`` for a model on CUDA. A model without
    trainable parameters is returned unwrapped (DDP refuses it). Errors name the config
    keys ``model_wrapper_cfg...`` and ``sync_bn``.
    """
    model = _convert_sync_bn(model, sync_bn)
    if not any(param.requires_grad for param in model.parameters()):
        print_log("the model has no trainable parameters; it is not wrapped for distributed training", logger="current")
        return model
    if wrapper_cfg is None:
        no_buffer_sync = "forward_sync_buffers" if _DDP_HAS_FORWARD_SYNC else "broadcast_buffers"
        wrapper_cfg = {"type": "MiniDistributedDataParallel", no_buffer_sync: False}
    elif not isinstance(wrapper_cfg, Mapping):
        raise ConfigError(
            "must be a dict such as dict(type='MiniDistributedDataParallel', find_unused_parameters=True), "
            f"got {type(wrapper_cfg).__name__}",
            key="model_wrapper_cfg",
        )
    wrapper_cfg = dict(wrapper_cfg)
    wrapper_cfg.setdefault("type", "MiniDistributedDataParallel")
    with config_key("model_wrapper_cfg"):
        wrapper_cls = wrapper_cfg["type"]
        if isinstance(wrapper_cls, str):
            wrapper_cls = MODEL_WRAPPERS.get(wrapper_cls)
            if wrapper_cls is None:
                known = MODEL_WRAPPERS.known_names()
                raise ConfigError(
                    f"'{wrapper_cfg['type']}' is not a registered model wrapper."
                    f"{did_you_mean(str(wrapper_cfg['type']), known)} Registered: {quoted_list(known)}",
                    key="type",
                )
        default_args: dict[str, Any] = dict(module=model)
        if isinstance(wrapper_cls, type) and issubclass(wrapper_cls, DistributedDataParallel):
            if find_unused_parameters is not None:
                default_args["find_unused_parameters"] = bool(find_unused_parameters)
            if _first_device(model).type == "cuda":
                default_args["device_ids"] = [torch.cuda.current_device()]
        return MODEL_WRAPPERS.build(wrapper_cfg, default_args=default_args)


def _convert_sync_bn(model: nn.Module, sync_bn: Any) -> nn.Module:
    if sync_bn in (None, False):
        return model
    if sync_bn not in (True, "torch"):
        raise ConfigError(f"must be True (or 'torch', torch's SyncBatchNorm) or False, got {sync_bn!r}", key="sync_bn")
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if _first_device(model).type == "cpu":
        # torch's SyncBatchNorm refuses CPU tensors in training: converting would stop CPU
        # runs of GPU configs at their first iteration.
        print_log(
            "sync_bn=True needs a GPU (torch's SyncBatchNorm does not run on CPU); BatchNorm layers stay per process",
            logger="current",
            level=logging.WARNING,
        )
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def _first_device(model: nn.Module) -> torch.device:
    """Where the model's first parameter (else buffer) lives; CPU for an empty model."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")
