"""`build_dataloader`: a torch ``DataLoader`` from a dataloader config."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, default_collate

from minirunner import dist
from minirunner.registry import DATA_SAMPLERS, DATASETS, FUNCTIONS, config_key
from minirunner.utils import ConfigError, did_you_mean, quoted_list

from .collate import collate_batched
from .sampler import InfiniteSampler
from .worker_init import worker_init_fn

# Keys build_dataloader handles itself; anything else must be a DataLoader argument.
_OWN_KEYS = (
    "dataset", "sampler", "batch_sampler", "batch_size", "num_workers", "persistent_workers",
    "pin_memory", "drop_last", "collate_fn", "worker_init_fn",
)


def build_dataloader(
    cfg: Mapping | DataLoader,
    seed: int | None = None,
    diff_rank_seed: bool = False,
) -> DataLoader:
    """Build a ``DataLoader`` from a config such as ``train_dataloader`` (or return one).

    Keys:
        - ``dataset`` (required): a dict config built from ``DATASETS``, or a dataset object.
        - ``sampler`` (required): a dict config built from ``DATA_SAMPLERS`` (it receives
          ``dataset``, and ``seed`` when it accepts one), or a sampler object.
        - ``batch_size`` (required): samples per batch *per process*.
        - ``num_workers`` (0), ``persistent_workers`` (False), ``prefetch_factor`` (2
          batches per worker; only with workers), ``drop_last`` (False).
        - ``pin_memory``: defaults to True when CUDA is available (the runner then trains
          there): batches in pinned memory reach the GPU asynchronously.
        - ``collate_fn``: ``dict(type=<FUNCTIONS name>, **kwargs)`` or a callable; defaults
          to ``dict(type='default_collate')``, torch's own. A dataset with ``__getitems__``
          (the built-in ones, :class:`InMemoryDataset`) then fetches each batch with one
          call and :func:`collate_batched` passes it on; any other ``collate_fn`` receives
          a list of samples, fetched one at a time, as with any dataset.
        - ``batch_sampler``: optional dict config built from ``DATA_SAMPLERS`` with
          ``sampler`` and ``batch_size``; it replaces batch_size/drop_last in the loader.
        - ``worker_init_fn``: a dict naming a ``FUNCTIONS`` entry, or a callable; when
          absent and ``seed`` is given, workers are seeded with
          :func:`~minirunner.dataset.worker_init_fn`.
        - any other ``DataLoader`` argument (``timeout``, ...).

    Args:
        cfg: the dataloader config, or a ready ``DataLoader``, returned unchanged.
        seed: the run's seed; passed to the sampler and used to seed the workers.
        diff_rank_seed: True when ``seed`` differs between ranks; the sampler then gets no
            seed (it draws one shared by all ranks), so the ranks' shares still do not
            overlap.

    Errors a config can fix raise :class:`ConfigError` with the key inside this config
    (``batch_size``, ``sampler.type``); the caller adds the outer key with
    ``config_key('train_dataloader')``.

    Example:
        >>> loader = build_dataloader(dict(
        ...     dataset=dict(type='SyntheticClassification', num_samples=10),
        ...     sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4))
        >>> [batch['inputs'].shape[0] for batch in loader]
        [4, 4, 2]
    """
    if isinstance(cfg, DataLoader):
        return cfg
    if not isinstance(cfg, Mapping):
        raise ConfigError(
            f"a dataloader must be a dict config or a DataLoader, got {type(cfg).__name__}; "
            "write it as dict(dataset=..., sampler=..., batch_size=...)"
        )
    cfg = dict(cfg)
    _check_keys(cfg)
    # Cheap checks first: a typo should not wait for a large dataset to load.
    dataset_cfg = _required(cfg, "dataset", "dict(type='DigitsDataset')")
    sampler_cfg = _required(
        cfg,
        "sampler",
        "dict(type='DefaultSampler', shuffle=True) for training, shuffle=False for "
        "validation and testing",
    )
    batch_size = _required(cfg, "batch_size", "a positive int, e.g. batch_size=32")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"must be a positive int, got {batch_size!r}", key="batch_size")
    num_workers = cfg.pop("num_workers", 0)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(
            f"must be an int >= 0 (0 loads in the main process), got {num_workers!r}",
            key="num_workers",
        )
    # Workers restart with each pass by default, so each epoch's workers get that epoch's seeds.
    persistent_workers = cfg.pop("persistent_workers", False)
    if persistent_workers and num_workers == 0:
        raise ConfigError(
            "is True but num_workers is 0; workers can only persist when there are some. "
            "Set num_workers >= 1 or persistent_workers=False",
            key="persistent_workers",
        )
    prefetch_factor = cfg.pop("prefetch_factor", None)
    if prefetch_factor is not None:
        if num_workers == 0:
            raise ConfigError(
                f"is {prefetch_factor!r} but num_workers is 0; only worker processes prefetch. "
                "Set num_workers >= 1 or remove prefetch_factor",
                key="prefetch_factor",
            )
        if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1:
            raise ConfigError(
                f"must be a positive int (batches loaded ahead by each worker), got {prefetch_factor!r}",
                key="prefetch_factor",
            )
    elif num_workers > 0:
        prefetch_factor = 2
    pin_memory = cfg.pop("pin_memory", None)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    drop_last = cfg.pop("drop_last", False)

    collate_cfg = cfg.pop("collate_fn", None)
    collate_fn = None
    if collate_cfg is not None:
        with config_key("collate_fn"):
            collate_fn = _build_function(collate_cfg)

    init_fn_cfg = cfg.pop("worker_init_fn", None)
    if init_fn_cfg is not None:
        with config_key("worker_init_fn"):
            init_fn = _build_function(init_fn_cfg)
    elif seed is not None:
        init_fn = functools.partial(
            worker_init_fn, num_workers=num_workers, rank=dist.get_rank(), seed=seed
        )
        if persistent_workers:
            # They live through all epochs: per-sample seeds of their first epoch would
            # repeat each sample's augmentation in every epoch.
            init_fn = functools.partial(init_fn, seed_samples=False)
    else:
        init_fn = None

    with config_key("dataset"):
        dataset = _build_dataset(dataset_cfg)
    with config_key("sampler"):
        sampler = _build_sampler(sampler_cfg, dataset, None if diff_rank_seed else seed)
    collate_fn, dataset = _collate_and_fetch(collate_fn, dataset)

    batching: dict[str, Any]
    batch_sampler_cfg = cfg.pop("batch_sampler", None)
    if batch_sampler_cfg is None:
        batching = dict(sampler=sampler, batch_size=batch_size, drop_last=drop_last)
    else:
        with config_key("batch_sampler"):
            batch_sampler = _build_batch_sampler(batch_sampler_cfg, sampler, batch_size)
        batching = dict(batch_sampler=batch_sampler)

    try:
        loader = DataLoader(
            dataset,
            num_workers=num_workers,
            persistent_workers=persistent_workers,
            prefetch_factor=prefetch_factor,
            pin_memory=pin_memory,
            collate_fn=collate_fn,
            worker_init_fn=init_fn,
            **batching,
            **cfg,
        )
    except Exception as error:
        raise ConfigError(
            f"building the DataLoader failed: {type(error).__name__}: {error}"
        ) from error
    # An empty loader is not reported here: the loops that would run over it raise a
    # ConfigError naming their dataloader key (see why_no_batches).
    return loader


def _check_keys(cfg: dict[str, Any]) -> None:
    if "shuffle" in cfg:
        raise ConfigError(
            "belongs to the sampler here: write sampler=dict(type='DefaultSampler', "
            f"shuffle={cfg['shuffle']!r}) and remove the dataloader's shuffle",
            key="shuffle",
        )
    loader_args = [
        name for name in inspect.signature(DataLoader).parameters if name not in ("self",)
    ]
    known = sorted(set(_OWN_KEYS) | set(loader_args))
    for key in cfg:
        if key not in known:
            raise ConfigError(
                f"is not a dataloader option.{did_you_mean(key, known)} Known options: "
                f"{quoted_list(known)}",
                key=key,
            )


def _required(cfg: dict[str, Any], key: str, example: str) -> Any:
    if key not in cfg:
        raise ConfigError(f"is missing from the dataloader config; add {key}={example}", key=key)
    return cfg.pop(key)


def _build_dataset(dataset_cfg: Any) -> Any:
    if isinstance(dataset_cfg, Mapping):
        dataset = DATASETS.build(dataset_cfg)
    elif dataset_cfg is None:
        raise ConfigError("is None; give a dataset config such as dict(type='DigitsDataset')")
    else:
        dataset = dataset_cfg
    # Datasets that defer loading (the reference's lazy_init) finish it here.
    full_init = getattr(dataset, "full_init", None)
    if callable(full_init):
        full_init()
    return dataset


def _build_sampler(sampler_cfg: Any, dataset: Any, seed: int | None) -> Any:
    if not isinstance(sampler_cfg, Mapping):
        return sampler_cfg
    default_args: dict[str, Any] = dict(dataset=dataset)
    sampler_type = sampler_cfg.get("type")
    sampler_cls = DATA_SAMPLERS.get(sampler_type) if isinstance(sampler_type, str) else sampler_type
    # A user's sampler without a seed argument is fine; only pass it where it is accepted.
    if sampler_cls is not None and _accepts(sampler_cls, "seed"):
        default_args["seed"] = seed
    return DATA_SAMPLERS.build(sampler_cfg, default_args=default_args)


def _collate_and_fetch(collate_fn: Callable | None, dataset: Any) -> tuple[Callable, Any]:
    """The loader's collate function, and the dataset to give the loader.

    A dataset's ``__getitems__`` returns a batch: with the default collate (unset, or
    ``default_collate`` itself, whose batch it equals) :func:`collate_batched` passes it on.
    Any other collate function was written for a list of samples, so it gets one: the loader
    reads a shallow copy of the dataset (the same class, sharing its data) whose
    ``__getitems__`` is None, which torch's fetcher takes as "one sample at a time".
    """
    if not callable(getattr(dataset, "__getitems__", None)):
        return collate_fn or default_collate, dataset
    if collate_fn is None or collate_fn is default_collate or collate_fn is collate_batched:
        return collate_batched, dataset
    per_sample = copy.copy(dataset)
    per_sample.__getitems__ = None
    return collate_fn, per_sample


def _build_batch_sampler(cfg: Any, sampler: Any, batch_size: int) -> Any:
    if not isinstance(cfg, Mapping):
        return cfg
    return DATA_SAMPLERS.build(cfg, default_args=dict(sampler=sampler, batch_size=batch_size))


def _build_function(cfg: Any) -> Callable:
    """Resolve ``dict(type=<FUNCTIONS name>, **kwargs)`` (or a callable) to a callable."""
    if callable(cfg) and not isinstance(cfg, Mapping):
        return cfg
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ConfigError(
            f"must be a callable or a dict with a 'type' naming a registered function, got "
            f"{cfg!r}; e.g. dict(type='default_collate')"
        )
    args = dict(cfg)
    fn_type = args.pop("type")
    fn = FUNCTIONS.get(fn_type) if isinstance(fn_type, str) else fn_type
    if fn is None or not callable(fn):
        raise ConfigError(
            f"{fn_type!r} is not registered in the 'function' registry."
            f"{did_you_mean(str(fn_type), FUNCTIONS.known_names())} Registered names: "
            f"{quoted_list(FUNCTIONS.known_names())}",
            key="type",
        )
    if not args:
        return fn
    for name in args:
        if not _accepts(fn, name):
            raise ConfigError(
                f"{fn_type!r} has no argument {name!r}; remove it from the config", key=name
            )
    return functools.partial(fn, **args)


def _accepts(obj: Any, name: str) -> bool:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def why_no_batches(loader: Any) -> str | None:
    """Why ``loader`` yields no batch in this process, or None when it yields some.

    None too when that cannot be told without loading data: an iterable dataset or a
    sampler without a length, or an :class:`InfiniteSampler` (its length is one pass over
    the dataset, but its stream never ends, so batches come even when that pass is shorter
    than a batch).

    The numbers are this process's: under torchrun a rank-aware sampler gives each process
    its share of the dataset, and ``batch_size`` is per process. The text is a problem and
    its fix, for a :class:`ConfigError` about the dataloader's key.

    Example:
        >>> loader = build_dataloader(dict(
        ...     dataset=dict(type='SyntheticClassification', num_samples=3),
        ...     sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4, drop_last=True))
        >>> why_no_batches(loader)  # doctest: +ELLIPSIS
        'its dataset has 3 samples, fewer than batch_size=4, and drop_last=True ...'
    """
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    if isinstance(sampler, InfiniteSampler) or isinstance(getattr(batch_sampler, "sampler", None), InfiniteSampler):
        return None
    batches = _length(loader)
    if batches is None or batches > 0:
        return None
    dataset = getattr(loader, "dataset", None)
    size = _length(dataset)
    if size == 0:
        return (
            f"its dataset ({type(dataset).__name__}) is empty, so it yields no batch; give the "
            "dataset samples (check its paths, split and filters)"
        )
    batch_size = getattr(loader, "batch_size", None)
    if batch_size is None:  # batches come from a batch_sampler of the config
        return (
            f"its batch_sampler ({type(batch_sampler).__name__}) yields no batch from the "
            f"dataset's {_samples(size)}; check the batch_sampler's settings"
        )
    share = _length(sampler)
    if share == 0:
        return (
            f"its sampler ({type(sampler).__name__}) gives this process none of the dataset's "
            f"{_samples(size)}, so it yields no batch; check the sampler's settings (with several "
            "processes, give the dataset at least one sample per process)"
        )
    drop_last = getattr(loader, "drop_last", False)
    if drop_last and share is not None and share < batch_size:
        world_size = dist.get_world_size()
        if world_size > 1:
            samples = (
                f"its dataset has {_samples(size)}, {share} per process over {world_size} "
                f"processes, fewer than batch_size={batch_size} (a per-process size)"
            )
        elif share != size:
            samples = f"its sampler gives {share} of the dataset's {_samples(size)}, fewer than batch_size={batch_size}"
        else:
            samples = f"its dataset has {_samples(size)}, fewer than batch_size={batch_size}"
        return (
            f"{samples}, and drop_last=True drops the incomplete batch, so it yields no batch; "
            f"set batch_size to {share} or less, or drop_last=False"
        )
    return (
        f"it yields no batch (dataset: {_samples(size)}, sampler: {share} for this process, "
        f"batch_size={batch_size}, drop_last={drop_last}); check these settings"
    )


def _samples(count: int | None) -> str:
    return "an unknown number of samples" if count is None else f"{count} sample{'' if count == 1 else 's'}"


def _length(obj: Any) -> int | None:
    """``len(obj)``, or None for an object without a length (an iterable dataset)."""
    try:
        return len(obj)
    except TypeError:
        return None
