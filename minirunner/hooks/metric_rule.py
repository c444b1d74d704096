"""Which way a metric improves: 'greater' or 'less', guessed from its name."""

from __future__ import annotations

from minirunner.utils import ConfigError

# Name fragments of metrics that improve upward or downward (the reference's lists).
GREATER_KEYS = ("acc", "top", "AR@", "auc", "precision", "mAP", "mDice", "mIoU", "mAcc", "aAcc")
LESS_KEYS = ("loss",)


def infer_rule(monitor: str) -> str:
    """Guess whether a larger or a smaller value of the metric ``monitor`` is better.

    As in the reference: an exact (case-insensitive) name match first, then a substring
    match, 'greater' names before 'less' names.

    Example:
        >>> infer_rule('accuracy/top1'), infer_rule('val/loss')
        ('greater', 'less')
    """
    name = monitor.lower()
    greater = [key.lower() for key in GREATER_KEYS]
    less = [key.lower() for key in LESS_KEYS]
    if name in greater:
        return "greater"
    if name in less:
        return "less"
    if any(key in name for key in greater):
        return "greater"
    if any(key in name for key in less):
        return "less"
    raise ConfigError(
        f"cannot tell whether a larger or a smaller {monitor!r} is better; "
        "set rule='greater' or rule='less'",
        key="rule",
    )
