# SGD with momentum for 20 epochs: a one-epoch linear warm-up and a cosine decay per epoch.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    # The warm-up is counted in epochs and stepped every iteration (convert_to_iter_based
    # multiplies `end` by the epoch length), so it stays one epoch for any dataset and any
    # number of processes.
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    # begin=0 (overlapping the warm-up, whose epoch it leaves at factor 1) keeps the config
    # valid for max_epochs=1; `end` defaults to max_epochs.
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-4),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
val_cfg = dict()
test_cfg = dict()
