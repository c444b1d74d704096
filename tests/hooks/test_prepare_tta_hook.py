"""PrepareTTAHook and BaseTTAModel: the test loop runs the model on every augmented view and
merges the predictions per sample, as the reference's ``tools/test.py --tta`` path does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from minirunner.hooks import Hook, PrepareTTAHook
from minirunner.model import BaseModel
from minirunner.model.base_tta_model import BaseTTAModel
from minirunner.registry import HOOKS, MODELS
from minirunner.utils import ConfigError


class Doubler(BaseModel):
    """Predicts 2 * input for each sample; records the batches it was given."""

    def __init__(self, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.seen = []
        self.w = nn.Parameter(torch.tensor(2.0))

    def forward(self, inputs, data_samples=None, mode="tensor"):
        self.seen.append(inputs)
        return [float(self.w.detach()) * float(x) for x in inputs]


@MODELS.register_module(force=True)
class MeanTTA(BaseTTAModel):
    """Averages the views of each sample; records what merge_preds received."""

    def merge_preds(self, data_samples_list):
        self.received = data_samples_list
        return [sum(views) / len(views) for views in data_samples_list]


MODELS.register_module(module=Doubler, force=True)


def test_test_step_splits_views_runs_each_and_merges_per_sample():
    model = Doubler()
    tta = MeanTTA(module=model)
    # Two samples, three views each: view-major, as TTA pipelines collate them.
    data = dict(inputs=[[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], data_samples=[[None, None]] * 3)
    merged = tta.test_step(data)
    assert model.seen == [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]  # one ordinary batch per view
    assert [list(views) for views in tta.received] == [[2.0, 4.0, 6.0], [20.0, 40.0, 60.0]]
    assert merged == [4.0, 40.0]


def test_tuple_batches_are_split_by_position():
    model = Doubler()

    class FirstView(BaseTTAModel):
        def merge_preds(self, data_samples_list):
            return [views[0] for views in data_samples_list]

    class TupleModule(Doubler):
        def test_step(self, data):
            inputs, _ = data
            return [2 * x for x in inputs]

    tta = FirstView(module=TupleModule())
    assert tta.test_step(([[1.0, 2.0], [5.0, 6.0]], [[None, None], [None, None]])) == [2.0, 4.0]
    with pytest.raises(TypeError):
        FirstView(module=model).test_step(torch.zeros(2))


def test_module_from_a_config_and_bad_modules():
    tta = MeanTTA(module=dict(type="Doubler"), data_preprocessor=dict(type="BaseDataPreprocessor"))
    assert isinstance(tta.module, Doubler)
    with pytest.raises(TypeError) as info:
        MeanTTA(module=3)
    assert isinstance(info.value, ConfigError)
    with pytest.raises(TypeError):
        MeanTTA(module=nn.Linear(1, 1))  # no test_step
    with pytest.raises(NotImplementedError):
        MeanTTA(module=Doubler())(torch.zeros(1))
    with pytest.raises(TypeError):
        BaseTTAModel(module=Doubler())  # merge_preds is abstract


class FakeRunner:
    def __init__(self, model):
        self.model = model


def test_prepare_tta_hook_wraps_the_model_before_test():
    tta_cfg = dict(type="MeanTTA")
    hook = HOOKS.build(dict(type="PrepareTTAHook", tta_cfg=tta_cfg))
    assert isinstance(hook, PrepareTTAHook) and isinstance(hook, Hook)
    assert hook.tta_cfg is tta_cfg
    assert hook.get_triggered_stages() == ["before_test"]
    model = Doubler()
    runner = FakeRunner(model)
    hook.before_test(runner)
    assert isinstance(runner.model, MeanTTA) and runner.model.module is model
    assert tta_cfg == dict(type="MeanTTA")  # the config is left as it was
    assert runner.model.test_step(dict(inputs=[[1.0], [3.0]])) == [4.0]
    with pytest.raises(ConfigError):
        PrepareTTAHook(tta_cfg="MeanTTA")
