# The default config (`make train`): an MLP on the embedded 8x8 digits, on CPU in seconds.
_base_ = [
    './_base_/datasets/digits.py',
    './_base_/schedules/sgd_20e.py',
    './_base_/default_runtime.py',
]

model = dict(type='MLPClassifier', in_features=64, hidden_dims=(128,), num_classes=10)
