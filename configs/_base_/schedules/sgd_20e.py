# SGD with momentum for 20 epochs, cosine decay after a one-epoch linear warm-up.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=45),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, eta_min=1e-4),
]
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=5)
val_cfg = dict()
test_cfg = dict()
