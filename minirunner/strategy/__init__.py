"""How a model is spread over processes: :class:`DDPStrategy` (the default under torchrun) and
:class:`FSDPStrategy` (FSDP2, ``fully_shard`` on a ``DeviceMesh``, DCP checkpoints).

Layer 2: imports ``utils``, ``dist``, ``registry``, ``logging`` and ``model`` only.
"""

from .base import BaseStrategy
from .builder import build_strategy
from .ddp import DDPStrategy
from .fsdp import FSDPStrategy, require_fsdp_environment
from .fsdp_wrapper import FSDPModelWrapper

__all__ = ["BaseStrategy", "DDPStrategy", "FSDPModelWrapper", "FSDPStrategy", "build_strategy", "require_fsdp_environment"]
