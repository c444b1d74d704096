"""The hooks every Runner registers first, by name (DESIGN.md, "Hooks")."""

# `default_hooks` in a config merges into this by name; a name set to None removes the hook.
# `progress` shows tqdm bars only when stdout is a terminal; elsewhere it is never called.
DEFAULT_HOOKS = {
    "runtime_info": dict(type="RuntimeInfoHook"),
    "timer": dict(type="IterTimerHook"),
    "sampler_seed": dict(type="DistSamplerSeedHook"),
    "logger": dict(type="LoggerHook", interval=10),
    "progress": dict(type="ProgressBarHook"),
    "param_scheduler": dict(type="ParamSchedulerHook"),
    "checkpoint": dict(type="CheckpointHook", interval=1),
}
