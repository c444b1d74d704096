"""Hooks: :class:`Hook` and the built-in hooks."""

from .checkpoint_hook import CheckpointHook
from .early_stopping_hook import EarlyStoppingHook
from .ema_hook import EMAHook
from .hook import EVENTS, Hook
from .iter_timer_hook import IterTimerHook
from .logger_hook import LoggerHook
from .param_scheduler_hook import ParamSchedulerHook
from .prepare_tta_hook import PrepareTTAHook
from .profiler_hook import ProfilerHook
from .priority import PRIORITIES, get_priority
from .progress_bar_hook import ProgressBarHook
from .runtime_info_hook import RuntimeInfoHook
from .sampler_seed_hook import DistSamplerSeedHook
from .sync_buffer_hook import SyncBuffersHook

__all__ = [
    "EVENTS", "Hook", "PRIORITIES", "get_priority", "CheckpointHook", "DistSamplerSeedHook",
    "EarlyStoppingHook", "EMAHook",
    "IterTimerHook", "LoggerHook", "ParamSchedulerHook", "PrepareTTAHook", "ProfilerHook", "ProgressBarHook",
    "RuntimeInfoHook", "SyncBuffersHook",
]
