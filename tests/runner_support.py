"""Config builders shared by the runner and hook tests (on sys.path through pytest's ``pythonpath``)."""

from __future__ import annotations


def loader_cfg(
    num_samples: int,
    batch_size: int,
    shuffle: bool = True,
    num_features: int = 4,
    num_classes: int = 2,
    dataset: str = "SyntheticClassification",
) -> dict:
    """A dataloader config over a synthetic classification dataset with a DefaultSampler."""
    return dict(
        dataset=dict(type=dataset, num_samples=num_samples, num_features=num_features, num_classes=num_classes),
        sampler=dict(type="DefaultSampler", shuffle=shuffle),
        batch_size=batch_size,
    )
