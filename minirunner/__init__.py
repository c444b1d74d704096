"""minirunner: a compact PyTorch training framework with MMEngine-style configs.

The top-level package imports nothing heavy; import what you need from its subpackages::

    from minirunner.config import Config
    from minirunner.registry import MODELS
"""

__version__ = "0.1.0"
