"""`OptimWrapperDict`: several named optimizer wrappers (a GAN's generator and discriminator)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from torch import nn

from minirunner.registry import OPTIM_WRAPPERS
from minirunner.utils import ConfigError, quoted_list

from .optimizer_wrapper import OptimWrapper


class OptimWrapperDictError(ConfigError, AssertionError):
    """A wrong wrapper, name or state given to an :class:`OptimWrapperDict`.

    An AssertionError as well, the class the reference engine raises in these places.
    """


class MissingOptimWrapperError(OptimWrapperDictError, KeyError):
    """``optim_wrapper[name]`` for a name the dict does not hold (also a KeyError, so
    ``name in wrappers`` and ``wrappers.get(name)`` work as for any mapping)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self._message()


@OPTIM_WRAPPERS.register_module()
class OptimWrapperDict(Mapping):
    """A read-only mapping of named :class:`OptimWrapper` objects.

    It reports learning rates and momenta of all wrappers, saves and loads their states
    by name, zeroes all their gradients, and forwards :meth:`initialize_count_status`. It
    does not train: a model with several optimizers calls the wrapper it means, e.g.
    ``optim_wrapper['gen'].update_params(loss)``; :meth:`update_params`, :meth:`backward`,
    :meth:`step` and :meth:`optim_context` raise NotImplementedError.

    Args:
        **optim_wrappers: the wrappers, by name.

    Attributes:
        optim_wrappers: the wrappers, as a dict by name (the reference's attribute).

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
                raise OptimWrapperDictError(
                    f"expected an OptimWrapper, got {type(wrapper).__name__}; build each "
                    "wrapper first (a multi-optimizer constructor returns them by name)",
                    key=name,
                )
        self.optim_wrappers: dict[str, OptimWrapper] = dict(optim_wrappers)

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, name: str) -> OptimWrapper:
        try:
            return self.optim_wrappers[name]
        except KeyError:
            raise MissingOptimWrapperError(
                f"no optimizer wrapper named {name!r}; have {quoted_list(self.optim_wrappers)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.optim_wrappers)

    def __len__(self) -> int:
        return len(self.optim_wrappers)

    def __contains__(self, name: object) -> bool:
        return name in self.optim_wrappers

    # ------------------------------------------------------------------ what it does
    @property
    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """``{name: wrapper.param_groups}`` for every wrapper."""
        return {name: wrapper.param_groups for name, wrapper in self.optim_wrappers.items()}

    def get_lr(self) -> dict[str, list[float]]:
        """Every wrapper's :meth:`~OptimWrapper.get_lr`, keys prefixed ``'name.'``."""
        result: dict[str, list[float]] = {}
        for name, wrapper in self.optim_wrappers.items():
            for key, value in wrapper.get_lr().items():
                result[f"{name}.{key}"] = value
        return result

    def get_momentum(self) -> dict[str, list[float]]:
        """Every wrapper's :meth:`~OptimWrapper.get_momentum`, keys prefixed ``'name.'``."""
        result: dict[str, list[float]] = {}
        for name, wrapper in self.optim_wrappers.items():
            for key, value in wrapper.get_momentum().items():
                result[f"{name}.{key}"] = value
        return result

    def zero_grad(self, **kwargs: Any) -> None:
        """Call ``zero_grad(**kwargs)`` on every wrapper."""
        for wrapper in self.optim_wrappers.values():
            wrapper.zero_grad(**kwargs)

    def state_dict(self) -> dict[str, Any]:
        """``{name: wrapper.state_dict()}`` for every wrapper."""
        return {name: wrapper.state_dict() for name, wrapper in self.optim_wrappers.items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load ``{name: state}`` as saved by :meth:`state_dict`; the names must match.

        Raises:
            OptimWrapperDictError: (a ConfigError and an AssertionError) when the names
                differ; unlike the reference, a wrapper missing from the state is an error
                too, since resuming it from scratch would not be an exact resume.
        """
        if not isinstance(state_dict, Mapping):
            raise OptimWrapperDictError(
                f"expected a dict of wrapper states by name, got {type(state_dict).__name__}",
                key="state_dict",
            )
        wrappers = self.optim_wrappers
        missing = [name for name in wrappers if name not in state_dict]
        unexpected = [name for name in state_dict if name not in wrappers]
        if missing or unexpected:
            raise OptimWrapperDictError(
                f"the saved state has wrappers {quoted_list(state_dict) or 'none'}, but this "
                f"OptimWrapperDict has {quoted_list(wrappers)} (missing: "
                f"{quoted_list(missing) or 'none'}; unexpected: "
                f"{quoted_list(unexpected) or 'none'}); resume with the same optimizer names",
                key="state_dict",
            )
        for name, wrapper in wrappers.items():
            try:
                wrapper.load_state_dict(state_dict[name])
            except ConfigError as error:
                raise error.under(name) from None

    def initialize_count_status(self, model: nn.Module, init_counts: int, max_counts: int) -> None:
        """Call :meth:`OptimWrapper.initialize_count_status` on every wrapper.

        The reference does nothing here and leaves it to the model; forwarding it makes
        accumulation windows of every wrapper end with the run, and calling it again on a
        wrapper sets the same values.
        """
        for wrapper in self.optim_wrappers.values():
            wrapper.initialize_count_status(model, init_counts, max_counts)

    # ------------------------------------------------------------------ what it does not do
    def _use_a_wrapper(self, method: str) -> NoReturn:
        names = list(self.optim_wrappers)
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

    def optim_context(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Not supported: use the named wrapper's ``optim_context``."""
        self._use_a_wrapper("optim_context")

    def __repr__(self) -> str:
        # The reference's layout: a "name: <name>" line before each wrapper's repr.
        return "\n".join(
            f"name: {name}\n{wrapper!r}" for name, wrapper in self.optim_wrappers.items()
        )
