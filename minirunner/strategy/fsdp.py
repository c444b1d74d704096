"""`FSDPStrategy`: fully sharded data parallel training with FSDP2 (``fully_shard`` on a
``DeviceMesh``), checkpoints with ``torch.distributed.checkpoint``."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from minirunner.logging import print_log
from minirunner.registry import STRATEGIES
from minirunner.utils import ConfigError, did_you_mean, quoted_list
from minirunner.utils.install_hint import extra_install_hint

from .base import BaseStrategy
from .fsdp_wrapper import FSDPModelWrapper
from .meta_init import BlockByBlockBuild
from .mmengine_keys import map_mmengine_fsdp_keys
from .optim_keys import keyed_by, rekey

_SHARD_KEYS = ("blocks", "reshard_after_forward")
_PRECISION_KEYS = ("param_dtype", "reduce_dtype", "output_dtype", "cast_forward_inputs")


@STRATEGIES.register_module()
class FSDPStrategy(BaseStrategy):
    """Shard parameters, gradients and optimizer state over the ranks with FSDP2.

    The model is built on the CPU with the same seed on every rank, initialised
    (``init_weights``, rank 0's weights broadcast), then each named block is sharded in turn
    (moved to this rank's GPU one block at a time when there is one), then the root; the
    optimizer wrapper is built on the sharded parameters (DTensors) afterwards.

    Args:
        shard: ``dict(blocks=[...], reshard_after_forward=True)``. ``blocks`` names the
            modules sharded one by one (a class name such as ``'Block'``, or a module's
            qualified name such as ``'layers.0'``); the rest is sharded with the root.
        mesh: ``dict(shape=None)``: None is one dimension over all ranks; ``(nodes,
            gpus_per_node)`` is a hybrid mesh (replicated across nodes, sharded within).
        mixed_precision: ``dict(param_dtype='bfloat16', reduce_dtype='float32')`` for
            FSDP2's ``MixedPrecisionPolicy``; None computes in the parameters' dtype.
        offload_to_cpu: keep the sharded parameters on the CPU (``CPUOffloadPolicy``).
        activation_checkpointing: names (as in ``blocks``) of modules whose activations are
            recomputed in backward instead of kept.
        state_dict: ``'sharded'``: checkpoints are directories written with DCP, every rank
            its shard (``tools/consolidate_checkpoint.py`` turns one into a ``.pth``).
            ``'full'``: a checkpoint is one ordinary ``.pth`` file, as a one-process run
            writes it: the whole model and optimizer state are gathered on rank 0 (in CPU
            memory), which writes them; on loading, every rank reads the file and keeps its
            shards. For small models: rank 0 must hold everything at once.
        skip_init_weights: do not call the model's ``init_weights`` before sharding.
        init_device: ``'cpu'``: each rank builds the whole model on its CPU, then shards it.
            ``'meta'``: each block of ``shard.blocks`` (named by class) is taken as soon as
            the constructor has built it: its shard is kept and the rest freed, so a rank
            holds one block at a time; the values are exactly those of ``'cpu'`` (see
            :mod:`minirunner.strategy.meta_init`). The model must be initialised by its
            constructor (no ``init_cfg`` or own ``init_weights``, or ``skip_init_weights``).

    Example:
        >>> strategy = dict(type='FSDPStrategy', shard=dict(blocks=['Block']),
        ...                 mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32'))
    """

    def __init__(
        self,
        shard: Mapping | None = None,
        mesh: Mapping | None = None,
        mixed_precision: Mapping | None = None,
        offload_to_cpu: bool = False,
        activation_checkpointing: list | tuple | None = None,
        state_dict: str = "sharded",
        skip_init_weights: bool = False,
        init_device: str = "cpu",
        **mmengine_keys: Any,
    ) -> None:
        state_dict = map_mmengine_fsdp_keys(mmengine_keys).get("state_dict", state_dict)
        shard = dict(shard or {})
        _check_keys(shard, _SHARD_KEYS, "shard")
        self.blocks = _names(shard.get("blocks", []), "shard.blocks")
        self.reshard_after_forward = shard.get("reshard_after_forward", True)
        mesh = dict(mesh or {})
        _check_keys(mesh, ("shape",), "mesh")
        self.mesh_shape = None if mesh.get("shape") is None else tuple(int(n) for n in mesh["shape"])
        if self.mesh_shape is not None and len(self.mesh_shape) not in (1, 2):
            raise ConfigError(f"must be None, (ranks,) or (nodes, gpus_per_node), got {mesh['shape']!r}", key="mesh.shape")
        self.mixed_precision = None if mixed_precision is None else dict(mixed_precision)
        if self.mixed_precision is not None:
            _check_keys(self.mixed_precision, _PRECISION_KEYS, "mixed_precision")
            for key in ("param_dtype", "reduce_dtype", "output_dtype"):
                if self.mixed_precision.get(key) is not None:
                    self.mixed_precision[key] = _dtype(self.mixed_precision[key], f"mixed_precision.{key}")
        self.offload_to_cpu = bool(offload_to_cpu)
        self.activation_checkpointing = _names(activation_checkpointing or [], "activation_checkpointing")
        if state_dict not in ("sharded", "full"):
            raise ConfigError(
                f"must be 'sharded' (checkpoints are DCP directories, every rank writing its shard) or 'full' "
                f"(one ordinary .pth file gathered on rank 0, for small models), got {state_dict!r}",
                key="state_dict",
            )
        self.state_dict_type = state_dict
        self.sharded_checkpoints = state_dict == "sharded"
        if init_device not in ("cpu", "meta"):
            raise ConfigError(
                f"must be 'cpu' (build the whole model on each rank's CPU) or 'meta' (free each block as soon as it "
                f"is built, keeping its shard), got {init_device!r}",
                key="init_device",
            )
        self.init_device = init_device
        self._build: BlockByBlockBuild | None = None  # set while the model is built on 'meta'
        self.initialises_weights_at_wrap = not skip_init_weights
        self.skip_init_weights = bool(skip_init_weights)
        self.mesh: Any = None
        self.checkpoint_group: Any = None
        self._compile: tuple[dict[str, Any], str] | None = None  # set by compile_blocks

    # PyTorch's order for FSDP2: compile each block, then shard it (the root stays eager).
    compiles_blocks = True
    shards_parameters = True

    def compile_blocks(self, options: dict[str, Any], cache_folder: str) -> None:
        """Compile each module of ``shard.blocks`` in place before it is sharded."""
        if not self.blocks:
            raise ConfigError(
                "under FSDPStrategy each block named in strategy.shard.blocks is compiled before it is "
                "sharded, and none is named. Name the model's repeated blocks, e.g. "
                "strategy=dict(type='FSDPStrategy', shard=dict(blocks=['Block']))",
                key="compile",
            )
        self._compile = (dict(options), cache_folder)
        settings = ", ".join(f"{key}={value!r}" for key, value in options.items()) or "torch's defaults"
        print_log(
            f"torch.compile: each of {quoted_list(self.blocks)} compiles before it is sharded ({settings}); "
            f"caches in {cache_folder}",
            logger="current",
        )

    # ------------------------------------------------------------------ building
    def build_context(self) -> AbstractContextManager:
        """With ``init_device='meta'``, a :class:`BlockByBlockBuild` for the model's
        construction (every rank builds the same model); otherwise nothing."""
        if self.init_device != "meta":
            return nullcontext()
        require_fsdp_environment()
        if self.offload_to_cpu and torch.cuda.is_available():
            raise ConfigError(
                "init_device='meta' does not support offload_to_cpu yet: use init_device='cpu'", key="strategy.init_device"
            )
        shape = self._mesh_shape()
        shard_size = shape[-1]
        # The usual build broadcasts rank 0's weights through this group too (see wrap).
        self.checkpoint_group = torch_dist.new_group(backend="gloo")
        self._build = BlockByBlockBuild(self.blocks, shard_size, torch_dist.get_rank() % shard_size, self.checkpoint_group)
        return self._build

    def _mesh_shape(self) -> tuple[int, ...]:
        world_size = torch_dist.get_world_size()
        shape = self.mesh_shape or (world_size,)
        if _product(shape) != world_size:
            raise ConfigError(f"{shape} holds {_product(shape)} ranks, but the run has {world_size}", key="strategy.mesh.shape")
        return shape

    def model_device(self) -> torch.device | None:
        """None: the model stays on the CPU until each block is sharded onto the GPU."""
        return None

    def wrap(self, model: nn.Module) -> nn.Module:
        """Initialise, checkpoint activations of and shard ``model``; returns it in an
        :class:`FSDPModelWrapper`."""
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        require_fsdp_environment()
        shape = self._mesh_shape()
        use_cuda = torch.cuda.is_available() and torch_dist.get_backend() == "nccl"
        names = ("replicate", "shard") if len(shape) == 2 else ("shard",)
        self.mesh = init_device_mesh("cuda" if use_cuda else "cpu", shape, mesh_dim_names=names)
        build, self._build = self._build, None  # set when the model was built on 'meta'
        if build is None and self.init_device == "meta":
            raise ConfigError(
                "init_device='meta' builds the model from its config, block by block, but the model was given "
                "already built (whole, on the CPU): pass model as a config dict, or use init_device='cpu'",
                key="strategy.init_device",
            )
        if build is None:
            # Checkpoint collectives get a (CPU) group of their own: an asynchronous save runs
            # them on a helper thread while training runs its own on the default group.
            self.checkpoint_group = torch_dist.new_group(backend="gloo")
            if not self.skip_init_weights and hasattr(model, "init_weights"):
                model.init_weights()  # before sharding: the same values as unsharded training
            for value in model.state_dict().values():  # on the CPU still: through the gloo group
                torch_dist.broadcast(value, src=0, group=self.checkpoint_group)
        else:
            if not self.skip_init_weights:
                _require_constructor_init(model)
            places = build.locate(model)  # every tensor is on the meta device now
        for module in _matching(model, self.activation_checkpointing, "strategy.activation_checkpointing"):
            from torch.distributed._composable import checkpoint

            checkpoint(module)  # keeps parameter names, unlike checkpoint_wrapper
        kwargs: dict[str, Any] = dict(mesh=self.mesh, reshard_after_forward=self.reshard_after_forward)
        if self.mixed_precision is not None:
            kwargs["mp_policy"] = MixedPrecisionPolicy(**self.mixed_precision)
        if self.offload_to_cpu and use_cuda:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        elif self.offload_to_cpu:
            print_log("FSDPStrategy: offload_to_cpu has no effect on the CPU (the shards are there already)",
                      logger="current", level=logging.WARNING)
        for module in _matching(model, self.blocks, "strategy.shard.blocks"):
            if self._compile is not None:
                from minirunner.model.compile import compile_model

                compile_model(module, *self._compile)
            fully_shard(module, **kwargs)
        fully_shard(model, **kwargs)
        if build is not None:
            build.materialise(places, torch.device("cuda", torch.cuda.current_device()) if use_cuda else "cpu")
            if not self.skip_init_weights and hasattr(model, "init_weights"):
                model.init_weights()  # nothing to apply (checked above); marks the modules initialised
        return FSDPModelWrapper(model)

    def broadcast_initial_weights(self, model: nn.Module) -> None:
        """Nothing: :meth:`wrap` initialised and broadcast the weights before sharding."""

    # ------------------------------------------------------------------ state
    def model_state_dict(self, model: nn.Module) -> dict[str, Any]:
        """The whole model's tensors, gathered from the shards on rank 0's CPU (the other
        ranks get an empty dict). Every rank calls it."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.unwrap(model), options=_gathered_on_rank0())

    def check_optim_wrapper(self, optim_wrapper: Any) -> None:
        """Refuse a dict of optimizer wrappers (one per submodule): checkpoints hold one
        optimizer under FSDPStrategy."""
        _optimizer_of(optim_wrapper)

    def optim_state_dict(self, model: nn.Module, optim_wrapper: Any) -> dict[str, Any]:
        """The optimizer wrapper's state with the optimizer's whole state gathered on rank 0's
        CPU, keyed by parameter name (``torch.distributed.checkpoint.state_dict``'s layout).
        Every rank calls it."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        optimizer = _optimizer_of(optim_wrapper)
        # The wrapper's own entries (loss scaler, base settings) beside the gathered state.
        extras = {k: v for k, v in optim_wrapper.state_dict().items() if k not in _OPTIMIZER_KEYS}
        gathered = get_optimizer_state_dict(self.unwrap(model), optimizer, options=_gathered_on_rank0())
        return {**gathered, **extras}

    def load_model_state_dict(self, model: nn.Module, state: Mapping[str, Any], strict: bool) -> Any:
        """Scatter full tensors (an ordinary checkpoint's) into the sharded ``model``."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        return set_model_state_dict(model, dict(state), options=StateDictOptions(full_state_dict=True, strict=strict))

    def load_optim_state_dict(self, model: nn.Module, optim_wrapper: Any, state: Mapping[str, Any]) -> None:
        """Load what :meth:`optim_state_dict` wrote (every rank has read the whole file):
        each rank keeps the state of its shards. A state keyed by parameter index (a
        one-process or DDP run's file) is re-keyed by name first."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        optimizer = _optimizer_of(optim_wrapper)
        saved = dict(state)
        if keyed_by(saved) == "index":  # a one-process or DDP run's file
            saved = rekey(saved, optimizer, self.unwrap(model), to="name")
        optimizer_state = {key: saved.pop(key) for key in _OPTIMIZER_KEYS if key in saved}
        set_optimizer_state_dict(
            self.unwrap(model), optimizer, optimizer_state, options=StateDictOptions(full_state_dict=True)
        )
        # The wrapper's own entries go through its load_state_dict, with the optimizer's
        # state just loaded and the saved groups' settings as they were written (torch's
        # loader turns tuples such as Adam's betas into lists).
        own = optimizer.state_dict()
        groups = optimizer_state.get("param_groups", [])
        if len(groups) == len(own["param_groups"]):
            own["param_groups"] = [
                {**group, "params": own_group["params"]} for group, own_group in zip(groups, own["param_groups"])
            ]
        optim_wrapper.load_state_dict({**own, **saved})


_OPTIMIZER_KEYS = ("state", "param_groups")


def _gathered_on_rank0() -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # cpu_offload: gathered tensor by tensor into rank 0's CPU memory; the other ranks keep none.
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _optimizer_of(optim_wrapper: Any) -> torch.optim.Optimizer:
    """The torch optimizer of a single optimizer wrapper; one line for anything else."""
    optimizer = getattr(optim_wrapper, "optimizer", None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ConfigError(
            f"FSDPStrategy checkpoints hold one optimizer, got {type(optim_wrapper).__name__} (several optimizers "
            "are not supported): use a single optim_wrapper; paramwise_cfg=dict(custom_keys=...) gives submodules "
            "their own lr and weight decay",
            key="optim_wrapper",
        )
    return optimizer


def _require_constructor_init(model: nn.Module) -> None:
    """Refuse a model whose ``init_weights`` would change weights after construction: under
    ``init_device='meta'`` the blocks are gone by then."""
    from minirunner.model.base_module import BaseModule

    for name, module in model.named_modules():
        init = getattr(type(module), "init_weights", None)
        what = None
        if getattr(module, "init_cfg", None):
            what = f"init_cfg={module.init_cfg!r}"
        elif init is not None and init is not BaseModule.init_weights:
            what = f"its own init_weights ({type(module).__name__}.init_weights)"
        if what is not None:
            raise ConfigError(
                f"init_device='meta' keeps only the values the model's constructor gives, and "
                f"{name or 'the model'} has {what}. Initialise in the constructor, set skip_init_weights=True, "
                "or use init_device='cpu'",
                key="strategy.init_device",
            )


def require_fsdp_environment() -> None:
    """Stop with one line when FSDP2 cannot run here: no NumPy (DCP's object collectives
    call ``tensor.numpy()``), or no process group."""
    if importlib.util.find_spec("numpy") is None:
        raise ConfigError(
            f"FSDPStrategy needs NumPy (torch's distributed checkpoints use it); install the fsdp extra: "
            f"{extra_install_hint('fsdp')}",
            key="strategy",
        )
    if not torch_dist.is_initialized():
        raise ConfigError(
            "FSDPStrategy needs a process group: start the run with torchrun and launcher='pytorch', e.g. "
            "`torchrun --nproc-per-node 2 tools/train.py CONFIG --launcher pytorch` (one process: --nproc-per-node 1)",
            key="strategy",
        )


def _matching(model: nn.Module, names: list[str], key: str) -> list[nn.Module]:
    """The submodules (never the root) whose class name or qualified name is in ``names``,
    deepest first as fully_shard wants them; a name that matches nothing is an error."""
    if not names:
        return []
    found, used = [], set()
    for qualified, module in model.named_modules():
        if not qualified:
            continue
        for name in (type(module).__name__, qualified):
            if name in names:
                found.append((qualified, module))
                used.add(name)
                break
    unused = [name for name in names if name not in used]
    if unused:
        classes = sorted({type(m).__name__ for _, m in model.named_modules()})
        hints = "".join(did_you_mean(name, classes) for name in unused)
        raise ConfigError(
            f"{quoted_list(unused)} matches no module of the model.{hints} Its module classes: {quoted_list(classes)}",
            key=key,
        )
    found.sort(key=lambda item: -item[0].count("."))
    return [module for _, module in found]


def _names(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, type)) for v in value):
        raise ConfigError(f"must be a list of module class names or qualified names, got {value!r}", key=key)
    return [v.__name__ if isinstance(v, type) else v for v in value]


def _check_keys(cfg: dict, accepted: tuple[str, ...], key: str) -> None:
    for name in cfg:
        if name not in accepted:
            raise ConfigError(
                f"unknown key.{did_you_mean(str(name), accepted)} Accepted: {quoted_list(accepted)}", key=f"{key}.{name}"
            )


def _dtype(value: Any, key: str) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    found = getattr(torch, str(value).replace("torch.", ""), None)
    if not isinstance(found, torch.dtype):
        raise ConfigError(f"must be a torch dtype name such as 'bfloat16' or 'float32', got {value!r}", key=key)
    return found


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total
