"""`PrepareTTAHook`: test with test-time augmentation by wrapping the model before testing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minirunner.registry import HOOKS, MODELS
from minirunner.utils import ConfigError

from .hook import Hook


@HOOKS.register_module()
class PrepareTTAHook(Hook):
    """Wrap ``runner.model`` in a test-time augmentation model before testing.

    ``before_test`` builds ``tta_cfg`` (a :class:`~minirunner.model.base_tta_model.BaseTTAModel`
    subclass registered in ``MODELS``) with the current model as ``module`` and makes it
    ``runner.model``, so the test loop's ``test_step`` runs the model on every augmented
    view and merges the predictions. The test dataloader must yield the augmented views
    (the config's ``tta_pipeline``).

    Args:
        tta_cfg: the TTA model's config, e.g. ``dict(type='MyTTAModel')``; its
            ``module`` is filled in with the model.

    Example:
        >>> runner.register_hook(PrepareTTAHook(tta_cfg=cfg.tta_model))  # doctest: +SKIP
        >>> runner.test()  # doctest: +SKIP
    """

    def __init__(self, tta_cfg: Mapping) -> None:
        if not isinstance(tta_cfg, Mapping):
            raise ConfigError(
                f"tta_cfg must be a dict such as dict(type='MyTTAModel'), got {type(tta_cfg).__name__}",
                key="tta_cfg",
            )
        self.tta_cfg = tta_cfg

    def before_test(self, runner: Any) -> None:
        """Replace ``runner.model`` by the TTA model wrapping it."""
        # A new dict rather than writing 'module' into tta_cfg: the config keeps no
        # reference to the model.
        runner.model = MODELS.build(dict(self.tta_cfg, module=runner.model))
