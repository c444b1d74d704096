# A small CNN on the digits with every optimizer feature at once: AMP (bfloat16 on CPU,
# float16 on CUDA), gradient accumulation, gradient clipping, warm-up plus cosine decay, and
# per-parameter options (no weight decay on norm layers and biases).
_base_ = ['./_base_/datasets/digits.py', './_base_/default_runtime.py']

model = dict(
    type='CNNClassifier', in_channels=1, num_classes=10, channels=(16, 32),
    data_preprocessor=dict(type='ImgDataPreprocessor', mean=[0.5], std=[0.5]),
)

train_dataloader = dict(batch_size=16)  # x2 accumulation = an effective batch of 32

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.05),
    accumulative_counts=2,
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)

# A one-epoch warm-up stepped every iteration (micro-batch: an epoch is len(dataloader)),
# then a cosine decay per epoch; begin=0 keeps the config valid for max_epochs=1.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-5),
]

train_cfg = dict(by_epoch=True, max_epochs=8, val_interval=2)
val_cfg = dict()
test_cfg = dict()
