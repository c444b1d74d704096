"""`OptimWrapperDict`: several named optimizer wrappers (a GAN's generator and discriminator)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from torch import nn

from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError, quoted_list

from .optimizer_wrapper import OptimWrapper


@OPTIM_WRAPPERS.register_module()
class OptimWrapperDict(Mapping):
    """A read-only mapping of named :class:`OptimWrapper` objects.

    It reports learning rates and momenta of all wrappers, saves and loads their states
    by name, and forwards :meth:`initialize_count_status`. It does not train: a model
    with several optimizers calls the wrapper it means, e.g.
    ``optim_wrapper['gen'].update_params(loss)``.

    Args:
        **optim_wrappers: the wrappers, by name.

    Example:
        >>> import torch
        >>> gen, disc = nn.Linear(1, 1), nn.Linear(1, 1)
        >>> wrappers = OptimWrapperDict(
        ...     gen=OptimWrapper(torch.optim.SGD(gen.parameters(), lr=0.01)),
        ...     disc=OptimWrapper(torch.optim.SGD(disc.parameters(), lr=0.02)))
        >>> wrappers.get_lr()
        {'gen.lr': [0.01], 'disc.lr': [0.02]}
    """

    def __init__(self, **optim_wrappers: OptimWrapper) -> None:
        for name, wrapper in optim_wrappers.items():
            if not isinstance(wrapper, OptimWrapper):
                raise ConfigError(
                    f"expected an OptimWrapper, got {type(wrapper).__name__}; build each "
                    "wrapper first (a multi-optimizer constructor returns them by name)",
                    key=name,
                )
        self._wrappers: dict[str, OptimWrapper] = dict(optim_wrappers)

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, name: str) -> OptimWrapper:
        try:
            return self._wrappers[name]
        except KeyError:
            raise KeyError(
                f"no optimizer wrapper named {name!r}; have {quoted_list(self._wrappers)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._wrappers)

    def __len__(self) -> int:
        return len(self._wrappers)

    # ------------------------------------------------------------------ what it does
    def get_lr(self) -> dict[str, list[float]]:
        """Every wrapper's :meth:`~OptimWrapper.get_lr`, keys prefixed ``'name.'``."""
        result: dict[str, list[float]] = {}
        for name, wrapper in self._wrappers.items():
            for key, value in wrapper.get_lr().items():
                result[f"{name}.{key}"] = value
        return result

    def get_momentum(self) -> dict[str, list[float]]:
        """Every wrapper's :meth:`~OptimWrapper.get_momentum`, keys prefixed ``'name.'``."""
        result: dict[str, list[float]] = {}
        for name, wrapper in self._wrappers.items():
            for key, value in wrapper.get_momentum().items():
                result[f"{name}.{key}"] = value
        return result

    def state_dict(self) -> dict[str, Any]:
        """``{name: wrapper.state_dict()}`` for every wrapper."""
        return {name: wrapper.state_dict() for name, wrapper in self._wrappers.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load ``{name: state}`` as saved by :meth:`state_dict`; the names must match."""
        if not isinstance(state_dict, Mapping):
            raise ConfigError(
                f"expected a dict of wrapper states by name, got {type(state_dict).__name__}",
                key="state_dict",
            )
        missing = [name for name in self._wrappers if name not in state_dict]
        unexpected = [name for name in state_dict if name not in self._wrappers]
        if missing or unexpected:
            raise ConfigError(
                f"the saved state has wrappers {quoted_list(state_dict) or 'none'}, but this "
                f"OptimWrapperDict has {quoted_list(self._wrappers)} (missing: "
                f"{quoted_list(missing) or 'none'}; unexpected: "
                f"{quoted_list(unexpected) or 'none'}); resume with the same optimizer names",
                key="state_dict",
            )
        for name, wrapper in self._wrappers.items():
            try:
                wrapper.load_state_dict(state_dict[name])
            except ConfigError as error:
                raise error.under(name) from None

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Call :meth:`OptimWrapper.initialize_count_status` on every wrapper."""
        for wrapper in self._wrappers.values():
            wrapper.initialize_count_status(model, init_counts, max_counts)

    # ------------------------------------------------------------------ what it does not do
    def _use_a_wrapper(self, method: str) -> NoReturn:
        names = list(self._wrappers)
        example = names[0] if names else "name"
        raise NotImplementedError(
            f"OptimWrapperDict.{method}() is ambiguous: it holds {quoted_list(names)}. "
            f"Call it on the wrapper you mean, e.g. optim_wrapper[{example!r}].{method}(...)."
        )

    def update_params(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: call ``update_params`` on the named wrapper."""
        self._use_a_wrapper("update_params")

    def backward(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: call ``backward`` on the named wrapper."""
        self._use_a_wrapper("backward")

    def step(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: call ``step`` on the named wrapper."""
        self._use_a_wrapper("step")

    def zero_grad(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: call ``zero_grad`` on the named wrapper."""
        self._use_a_wrapper("zero_grad")

    def optim_context(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: use the named wrapper's ``optim_context``."""
        self._use_a_wrapper("optim_context")

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, wrapper in self._wrappers.items():
            lines.append(f"  {name}=" + repr(wrapper).replace("\n", "\n  ") + ",")
        lines.append(")")
        return "\n".join(lines)
