"""Errors raised while looking names up and building objects, and :func:`config_key`.

Code written for the reference catches ``KeyError`` when a name is not registered and
``TypeError`` when a config has the wrong type; the classes here are also
:class:`~minirunner.utils.ConfigError`, so our tools print them as one-line config errors
with the key path.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from minirunner.utils import ConfigError


class RegistryKeyError(ConfigError, KeyError):
    """A config names a ``type`` that no registry in reach holds, or has no ``type`` at all.

    Both a :class:`ConfigError` and a ``KeyError``: ``except KeyError`` (the reference's
    class) and ``except ConfigError`` both catch it.

    Example:
        >>> from minirunner.registry import Registry
        >>> try:  # doctest: +ELLIPSIS
        ...     Registry('model', scope='demo').build(dict(type='Nope'))
        ... except KeyError as error:
        ...     print(error)
        type: 'Nope' is not registered in the 'model' registry ...
    """

    def __str__(self) -> str:
        # KeyError.__str__ would quote the message (repr of the first argument).
        return self._message()


class RegistryTypeError(ConfigError, TypeError):
    """A config (or its ``type``) has the wrong Python type: a list where a dict belongs,
    a number where a name or class belongs. Both a :class:`ConfigError` and a ``TypeError``.
    """

    def __str__(self) -> str:
        return self._message()


class FullKeyConfigError(ConfigError):
    """A :class:`ConfigError` whose key is already the full path from the top of the config.

    For code that runs inside one key's :func:`config_key` block but finds a problem with
    another key: a training loop is built under ``config_key('train_cfg')``, yet an empty
    dataloader is a problem of ``train_dataloader``, not of ``train_cfg.train_dataloader``.
    The enclosing blocks leave the key of this error as it is.

    Example:
        >>> with config_key('train_cfg'):  # doctest: +SKIP
        ...     raise FullKeyConfigError('the dataset is empty', key='train_dataloader')
        FullKeyConfigError: train_dataloader: the dataset is empty
    """

    def under(self, parent: str) -> "FullKeyConfigError":
        """Return the error unchanged: its key is complete."""
        return self


@contextmanager
def config_key(key: str) -> Iterator[None]:
    """Add ``key`` to the path of any :class:`ConfigError` raised inside the block.

    Example:
        >>> with config_key('optim_wrapper'):  # doctest: +SKIP
        ...     build_optim_wrapper(model, cfg.optim_wrapper)
        ConfigError: optim_wrapper.optimizer.type: 'SDG' is not registered ...
    """
    try:
        yield
    except ConfigError as error:
        raise error.under(key)
