"""Gradient clipping as configured by an optimizer wrapper's ``clip_grad`` argument."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

import torch
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from minirunner.utils import ConfigError, did_you_mean, quoted_list

_EXAMPLES = "dict(max_norm=35, norm_type=2) or dict(type='value', clip_value=0.5)"

# The keyword arguments torch's clipping functions accept, besides the parameters. ``type``
# is ours and is stripped before the call.
_ACCEPTED_KEYS = {
    "norm": ("max_norm", "norm_type", "error_if_nonfinite", "foreach"),
    "value": ("clip_value", "foreach"),
}
_REQUIRED_KEY = {"norm": "max_norm", "value": "clip_value"}


class GradClipper:
    """Clip gradients in place, by total norm or element-wise by value.

    ``cfg`` is the ``clip_grad`` dict of an optimizer wrapper:

    - ``dict(max_norm=35, norm_type=2)`` or ``dict(type='norm', ...)`` clips with
      :func:`torch.nn.utils.clip_grad_norm_`;
    - ``dict(type='value', clip_value=0.5)`` clips with
      :func:`torch.nn.utils.clip_grad_value_`. A dict that holds ``clip_value`` and no
      ``type`` also means clipping by value.

    The dict is read, never changed. Mistakes (unknown keys, a missing ``max_norm``,
    an unknown ``type``) raise :class:`ConfigError` naming ``clip_grad``.

    Example:
        >>> clipper = GradClipper(dict(max_norm=1.0))
        >>> p = torch.nn.Parameter(torch.zeros(2)); p.grad = torch.tensor([3.0, 4.0])
        >>> clipper([p])  # the total norm before clipping
        tensor(5.)
        >>> p.grad
        tensor([0.6000, 0.8000])
    """

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        if not isinstance(cfg, Mapping):
            raise ConfigError(
                f"expected a dict such as {_EXAMPLES}, got {type(cfg).__name__} {cfg!r}; "
                "leave clip_grad out (None) to disable clipping",
                key="clip_grad",
            )
        kwargs = dict(cfg)  # a copy: the caller's dict stays as it was
        if "type" in kwargs:
            kind = kwargs.pop("type")
        else:
            kind = "value" if "clip_value" in kwargs else "norm"
        if kind not in _ACCEPTED_KEYS:
            hint = did_you_mean(kind, _ACCEPTED_KEYS) if isinstance(kind, str) else ""
            raise ConfigError(
                f"unknown clipping type {kind!r}.{hint} Use 'norm' (clip_grad_norm_) or "
                f"'value' (clip_grad_value_), e.g. {_EXAMPLES}",
                key="clip_grad.type",
            )
        accepted = _ACCEPTED_KEYS[kind]
        for key in kwargs:
            if key not in accepted:
                raise ConfigError(
                    f"unknown key for clipping by {kind}.{did_you_mean(str(key), accepted)} "
                    f"Accepted keys: {quoted_list(accepted + ('type',))}",
                    key=f"clip_grad.{key}",
                )
        required = _REQUIRED_KEY[kind]
        if required not in kwargs:
            raise ConfigError(
                f"clipping by {kind} needs '{required}' (got keys: "
                f"{quoted_list(cfg.keys()) or 'none'}); write it as {_EXAMPLES}",
                key="clip_grad",
            )
        threshold = kwargs[required]
        if isinstance(threshold, bool) or not isinstance(threshold, Real) or threshold <= 0:
            raise ConfigError(
                f"must be a positive number, got {threshold!r}", key=f"clip_grad.{required}"
            )
        self.kind: str = kind
        self.kwargs: dict[str, Any] = kwargs

    @property
    def func(self) -> Any:
        """The torch function that clips: ``clip_grad_norm_`` or ``clip_grad_value_``."""
        return clip_grad_norm_ if self.kind == "norm" else clip_grad_value_

    def __call__(self, params: list[torch.Tensor]) -> torch.Tensor | None:
        """Clip the gradients of ``params`` in place.

        Returns the total norm before clipping (a 0-dim tensor on the gradients' device)
        when clipping by norm, None when clipping by value.
        """
        if self.kind == "norm":
            norm = clip_grad_norm_(params, **self.kwargs)
            # FSDP2's gradients are DTensors: their total norm is a replicated DTensor.
            return norm.to_local() if hasattr(norm, "to_local") else norm
        clip_grad_value_(params, **self.kwargs)
        return None

    def __repr__(self) -> str:
        items = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"dict(type={self.kind!r}, {items})"
