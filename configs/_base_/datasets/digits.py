# The 8x8 handwritten digits embedded in minirunner: 1,438 training and 359 validation images.
train_dataloader = dict(
    batch_size=32,
    num_workers=0,  # the whole set is one in-memory tensor; workers would only add overhead
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='DigitsDataset', split='train'),
)
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DigitsDataset', split='val'),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1,))
test_evaluator = val_evaluator
