"""Optimizer wrappers, the optimizer constructor and parameter schedulers.

Importing this package registers them all: OptimWrapper, AmpOptimWrapper and
OptimWrapperDict in OPTIM_WRAPPERS, the constructors in OPTIM_WRAPPER_CONSTRUCTORS and every
scheduler in PARAM_SCHEDULERS (whose build function handles ``convert_to_iter_based``).
"""

from .constructors import *  # noqa: F401,F403
from .constructors import __all__ as _constructors_all
from .scheduler import *  # noqa: F401,F403
from .scheduler import __all__ as _scheduler_all
from .wrappers import *  # noqa: F401,F403
from .wrappers import __all__ as _wrappers_all

__all__ = [*_wrappers_all, *_constructors_all, *_scheduler_all]
