# ResNet-18 on CIFAR-10 (needs torchvision: see the README's "Vision (torchvision)" section).
# About 95 % top-1 after 200 epochs on a GPU. The data is downloaded into data/cifar10 on first
# use and checked against the official MD5 sums; for a copy of your own in the same format, add
# --cfg-options train_dataloader.dataset.data_root=DIR train_dataloader.dataset.verify=False
# (and the same for val_dataloader/test_dataloader).
_base_ = ['./_base_/default_runtime.py']

model = dict(
    type='TorchvisionClassifier', arch='resnet18', num_classes=10, cifar_stem=True,
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[125.307, 122.961, 113.8575], std=[51.5865, 50.847, 51.255],
    ),
)

data_root = 'data/cifar10'
train_dataloader = dict(
    batch_size=128,
    num_workers=4,
    # Workers restart each epoch (persistent_workers=False), so each epoch's augmentations
    # are seeded anew from (seed, epoch, sample index).
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CIFAR10', data_root=data_root, train=True, download=True, verify=True,
        # torchvision.transforms.v2 by name; images stay uint8 and are normalised on the
        # device by the data_preprocessor.
        pipeline=[dict(type='RandomCrop', size=32, padding=4), dict(type='RandomHorizontalFlip')],
    ),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=4,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CIFAR10', data_root=data_root, train=False, download=True, verify=True),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    # begin=0 (overlapping the one-epoch warm-up) keeps the config valid for max_epochs=1.
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=0.0),
]
train_cfg = dict(by_epoch=True, max_epochs=200, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=128)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(interval=10, save_best='auto'))
