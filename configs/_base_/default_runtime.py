# Runtime settings shared by every config: hooks, environment, logging, randomness.
default_scope = 'minirunner'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
)

env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='nccl'),  # falls back to gloo on machines without CUDA
)

log_processor = dict(window_size=10)
log_level = 'INFO'
randomness = dict(seed=0, deterministic=False)
load_from = None
resume = False
