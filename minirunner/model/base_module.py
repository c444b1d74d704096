"""`BaseModule`: an ``nn.Module`` whose weights an ``init_cfg`` initialises, and the
``init_cfg``-aware containers ``Sequential``, ``ModuleList`` and ``ModuleDict``."""

from __future__ import annotations

import copy
import logging
from abc import ABCMeta
from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

from minirunner.logging import print_log

from .weight_init import initialize


def _is_pretrained(cfg: Mapping) -> bool:
    kind = cfg.get("type")
    if kind == "Pretrained":
        return True
    # A class given as the type; imported here so the two modules stay independent.
    from .pretrained_init import PretrainedInit

    return kind is PretrainedInit


class BaseModule(nn.Module, metaclass=ABCMeta):
    """An ``nn.Module`` with an ``init_cfg`` that :meth:`init_weights` applies.

    Args:
        init_cfg: a dict or a list of dicts naming ``WEIGHT_INITIALIZERS`` entries, e.g.
            ``dict(type='Kaiming', layer='Conv2d')`` or
            ``[dict(type='Constant', val=1, layer='BatchNorm2d'),
            dict(type='Normal', std=0.01, override=dict(name='head'))]``. None keeps
            PyTorch's default initialisation. The config is deep-copied.

    ``init_weights`` runs once (``is_init`` guards it); the runner calls it on the model
    before loading ``load_from``. A child's own ``init_cfg`` wins over its parent's:
    children are initialised after the parent's configs, except ``Pretrained`` ones, which
    the parent applies last so that loaded weights are never overwritten.

    Example:
        >>> class Net(BaseModule):
        ...     def __init__(self):
        ...         super().__init__(init_cfg=dict(type='Constant', val=0.5, layer='Linear'))
        ...         self.fc = nn.Linear(2, 2)
        >>> net = Net()
        >>> net.init_weights()
        >>> net.fc.weight.max().item(), net.is_init
        (0.5, True)
    """

    def __init__(self, init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__()
        self._is_init = False
        self.init_cfg = copy.deepcopy(init_cfg)

    @property
    def is_init(self) -> bool:
        """True once :meth:`init_weights` has run."""
        return self._is_init

    @is_init.setter
    def is_init(self, value: bool) -> None:
        self._is_init = value

    def init_weights(self) -> None:
        """Apply ``init_cfg``, then let each child initialise itself (once).

        Order: this module's configs other than ``Pretrained``; then every child that has
        an ``init_weights`` method and is not yet initialised (a model wrapper's inner
        module counts as the child); then this module's ``Pretrained`` configs. A second
        call logs a warning and changes nothing.
        """
        name = type(self).__name__
        if self._is_init:
            print_log(
                f"init_weights of {name} has been called more than once.",
                logger="current",
                level=logging.WARNING,
            )
            return
        pretrained: list[Mapping] = []
        if self.init_cfg:
            print_log(
                f"initialize {name} with init_cfg {self.init_cfg}",
                logger="current",
                level=logging.DEBUG,
            )
            cfgs = [self.init_cfg] if isinstance(self.init_cfg, Mapping) else self.init_cfg
            others = []
            for cfg in cfgs:
                (pretrained if isinstance(cfg, Mapping) and _is_pretrained(cfg) else others).append(cfg)
            initialize(self, others)
        for child in self.children():
            if not hasattr(child, "init_weights") and isinstance(getattr(child, "module", None), nn.Module):
                child = child.module  # a model wrapper around a module that has init_weights
            if hasattr(child, "init_weights") and not getattr(child, "is_init", False):
                child.init_weights()
        if pretrained:
            initialize(self, pretrained)
        self._is_init = True

    def __repr__(self) -> str:
        text = super().__repr__()
        if self.init_cfg:
            text += f"\ninit_cfg={self.init_cfg}"
        return text


class Sequential(BaseModule, nn.Sequential):
    """``nn.Sequential`` with its own ``init_cfg`` (keyword only).

    Example:
        >>> seq = Sequential(nn.Linear(2, 2), init_cfg=dict(type='Constant', val=1, layer='Linear'))
        >>> seq.init_weights(); seq[0].weight.min().item()
        1.0
    """

    def __init__(self, *args: nn.Module, init_cfg: dict | list[dict] | None = None) -> None:
        BaseModule.__init__(self, init_cfg)
        nn.Sequential.__init__(self, *args)


class ModuleList(BaseModule, nn.ModuleList):
    """``nn.ModuleList`` with its own ``init_cfg``."""

    def __init__(
        self, modules: Iterable[nn.Module] | None = None, init_cfg: dict | list[dict] | None = None
    ) -> None:
        BaseModule.__init__(self, init_cfg)
        nn.ModuleList.__init__(self, modules)


class ModuleDict(BaseModule, nn.ModuleDict):
    """``nn.ModuleDict`` with its own ``init_cfg``."""

    def __init__(
        self, modules: Mapping[str, nn.Module] | Any = None, init_cfg: dict | list[dict] | None = None
    ) -> None:
        BaseModule.__init__(self, init_cfg)
        nn.ModuleDict.__init__(self, modules)
