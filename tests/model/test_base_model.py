"""BaseModel: parse_losses numbers, the train/val/test step templates, data_preprocessor."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minirunner.model import BaseDataPreprocessor, BaseModel, ImgDataPreprocessor
from minirunner.optim import OptimWrapper
from minirunner.registry import config_key
from minirunner.utils import ConfigError


class RecordingOptimWrapper:
    """The part of the OptimWrapper interface train_step uses, recording the call order."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.events: list[tuple] = []
        self.in_context = False

    @contextmanager
    def optim_context(self, model):
        self.events.append(("enter", model))
        self.in_context = True
        try:
            yield
        finally:
            self.in_context = False
            self.events.append(("exit", model))

    def update_params(self, loss):
        self.events.append(("update", loss, self.in_context))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()


class RecordingPreprocessor(BaseDataPreprocessor):
    def __init__(self, wrapper_box: list) -> None:
        super().__init__()
        self.wrapper_box = wrapper_box
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, data, training=False):
        wrapper = self.wrapper_box[0] if self.wrapper_box else None
        self.calls.append((training, bool(wrapper and wrapper.in_context)))
        return super().forward(data, training)


class LinearNet(BaseModel):
    def __init__(self, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.fc = nn.Linear(3, 2)
        self.modes: list[tuple[str, bool]] = []
        self.wrapper_box: list = []

    def forward(self, inputs, data_samples=None, mode="tensor"):
        wrapper = self.wrapper_box[0] if self.wrapper_box else None
        self.modes.append((mode, bool(wrapper and wrapper.in_context)))
        logits = self.fc(inputs)
        if mode == "loss":
            return dict(loss=F.cross_entropy(logits, data_samples), acc=torch.tensor(0.25))
        if mode == "predict":
            return logits.argmax(1)
        return logits


class NoForward(BaseModel):
    pass


def _make_net_with_recorder() -> tuple[LinearNet, RecordingPreprocessor]:
    box: list = []
    pre = RecordingPreprocessor(box)
    net = LinearNet(data_preprocessor=pre)
    net.wrapper_box = box
    return net, pre


def test_parse_losses_means_sums_and_detaches():
    net = LinearNet()
    weight = torch.tensor(2.0, requires_grad=True)
    losses = dict(
        loss_cls=torch.tensor([1.0, 2.0, 6.0]) * weight,  # mean 6
        loss_box=[torch.tensor([1.0, 3.0]), torch.tensor(5.0) * weight],  # 2 + 10 = 12
        acc=torch.tensor([0.5, 1.0]),  # mean 0.75, not a loss
    )
    loss, log_vars = net.parse_losses(losses)
    assert loss.item() == pytest.approx(18.0)
    assert list(log_vars) == ["loss", "loss_cls", "loss_box", "acc"]
    assert log_vars["loss"].item() == pytest.approx(18.0)
    assert log_vars["loss_cls"].item() == pytest.approx(6.0)
    assert log_vars["loss_box"].item() == pytest.approx(12.0)
    assert log_vars["acc"].item() == pytest.approx(0.75)
    # The returned loss keeps its graph; the logged values do not.
    loss.backward()
    assert weight.grad.item() == pytest.approx(3.0 + 5.0)
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in log_vars.values())


def test_parse_losses_total_is_logged_under_loss_even_with_a_loss_key():
    net = LinearNet()
    loss, log_vars = net.parse_losses(dict(loss=torch.tensor(1.0), loss_aux=torch.tensor(2.0)))
    assert loss.item() == 3.0
    assert log_vars["loss"].item() == 3.0
    assert log_vars["loss_aux"].item() == 2.0


def test_parse_losses_rejects_bad_values_and_missing_loss():
    net = LinearNet()
    with pytest.raises(TypeError, match="'loss_x'"):
        net.parse_losses(dict(loss_x=1.0))
    with pytest.raises(ValueError, match="no key containing 'loss'"):
        net.parse_losses(dict(acc=torch.tensor(1.0)))


def test_train_step_runs_preprocessor_and_forward_inside_context_then_updates():
    torch.manual_seed(0)
    net, pre = _make_net_with_recorder()
    reference = nn.Linear(3, 2)
    reference.load_state_dict(net.fc.state_dict())
    wrapper = RecordingOptimWrapper(torch.optim.SGD(net.parameters(), lr=0.5))
    net.wrapper_box.append(wrapper)
    inputs = torch.randn(4, 3)
    labels = torch.tensor([0, 1, 1, 0])

    log_vars = net.train_step(dict(inputs=inputs, data_samples=labels), wrapper)

    assert pre.calls == [(True, True)]
    assert net.modes == [("loss", True)]
    kinds = [event[0] for event in wrapper.events]
    assert kinds == ["enter", "exit", "update"]
    assert wrapper.events[0][1] is net
    assert wrapper.events[2][2] is False  # backward happens outside the context
    # The same step written by hand.
    expected_loss = F.cross_entropy(reference(inputs), labels)
    expected_loss.backward()
    with torch.no_grad():
        for param in reference.parameters():
            param -= 0.5 * param.grad
    assert torch.allclose(net.fc.weight, reference.weight)
    assert torch.allclose(net.fc.bias, reference.bias)
    assert log_vars["loss"].item() == pytest.approx(expected_loss.item())
    assert log_vars["acc"].item() == pytest.approx(0.25)


def test_val_and_test_step_preprocess_without_training_and_predict():
    net, pre = _make_net_with_recorder()
    inputs = torch.randn(5, 3)
    expected = net.fc(inputs).argmax(1)
    assert torch.equal(net.val_step(dict(inputs=inputs)), expected)
    assert torch.equal(net.test_step(dict(inputs=inputs)), expected)
    assert pre.calls == [(False, False), (False, False)]
    assert [mode for mode, _ in net.modes] == ["predict", "predict"]


def test_steps_accept_a_tuple_batch_as_positional_arguments():
    net = LinearNet()
    inputs = torch.randn(2, 3)
    assert torch.equal(net.val_step((inputs,)), net.fc(inputs).argmax(1))


def test_data_preprocessor_argument_forms():
    assert type(LinearNet().data_preprocessor) is BaseDataPreprocessor
    built = LinearNet(data_preprocessor=dict(type="ImgDataPreprocessor", mean=[1], std=[2]))
    assert isinstance(built.data_preprocessor, ImgDataPreprocessor)
    assert type(LinearNet(data_preprocessor=dict(non_blocking=False)).data_preprocessor) is (
        BaseDataPreprocessor
    )
    module = ImgDataPreprocessor()
    assert LinearNet(data_preprocessor=module).data_preprocessor is module


def test_data_preprocessor_errors_name_the_key():
    with pytest.raises(ConfigError) as info, config_key("model"):
        LinearNet(data_preprocessor=dict(type="ImgDataPreprocesor"))
    assert info.value.key == "model.data_preprocessor.type"
    assert "Did you mean 'ImgDataPreprocessor'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        LinearNet(data_preprocessor="ImgDataPreprocessor")
    assert info.value.key == "data_preprocessor"


def test_forward_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        NoForward()


# ---------------------------------------------------------------- forward without __call__
# train_step calls `forward` directly when nothing hooks the modules (minirunner.model.plain_call);
# every kind of hook, registered at any time, must still run.
def _train_once(net: LinearNet) -> None:
    wrapper = OptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1))
    net.train_step(dict(inputs=torch.randn(4, 3), data_samples=torch.tensor([0, 1, 1, 0])), wrapper)


@pytest.mark.parametrize("where", ["model", "preprocessor"])
def test_train_step_calls_hooks_registered_after_the_first_step(where):
    net = LinearNet()
    _train_once(net)  # the direct path, no hook yet
    module = net if where == "model" else net.data_preprocessor
    seen = []
    handles = [
        module.register_forward_pre_hook(lambda m, args: seen.append("pre")),
        module.register_forward_hook(lambda m, args, out: seen.append("forward")),
    ]
    _train_once(net)
    assert seen == ["pre", "forward"]
    for handle in handles:
        handle.remove()
    _train_once(net)
    assert seen == ["pre", "forward"]  # removed hooks are not called


def test_train_step_calls_a_hook_that_changes_the_inputs():
    net = LinearNet()
    _train_once(net)
    # A pre-hook with kwargs replaces the inputs: the forward must see the replaced ones.
    shapes = []
    net.register_forward_pre_hook(
        lambda m, args, kwargs: (args, {**kwargs, "inputs": kwargs["inputs"] * 0}), with_kwargs=True
    )
    net.register_forward_hook(lambda m, args, kwargs, out: shapes.append(float(kwargs["inputs"].abs().sum())),
                              with_kwargs=True)
    _train_once(net)
    assert shapes == [0.0]


def test_train_step_calls_global_hooks():
    from torch.nn.modules.module import register_module_forward_hook

    net = LinearNet()
    _train_once(net)
    seen = []
    handle = register_module_forward_hook(lambda m, args, out: seen.append(type(m).__name__))
    try:
        _train_once(net)
    finally:
        handle.remove()
    assert "LinearNet" in seen and "BaseDataPreprocessor" in seen


def test_hookless_answers_for_hooks_compile_and_call_overrides():
    from minirunner.model.plain_call import hookless

    a, b = nn.Linear(2, 2), nn.ReLU()
    assert hookless(a, b)
    handle = b.register_forward_pre_hook(lambda m, args: None)
    assert not hookless(a, b)
    handle.remove()
    assert hookless(a, b)

    class OwnCall(nn.Linear):
        def __call__(self, *args, **kwargs):
            return super().__call__(*args, **kwargs)

    handle = a.register_full_backward_hook(lambda m, grad_in, grad_out: None)
    assert not hookless(a, b)  # __call__ wires backward hooks into the graph
    handle.remove()
    assert not hookless(OwnCall(2, 2), b)
    a._compiled_call_impl = lambda *args, **kwargs: None  # what nn.Module.compile() sets
    assert not hookless(a, b)


class SwappedNet(BaseModel):
    """forward takes its arguments in another order: the batch must still arrive by name."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.extra_seen: list = []

    def forward(self, data_samples=None, inputs=None, mode="tensor", extra=None):
        self.extra_seen.append(extra)
        return dict(loss=F.cross_entropy(self.fc(inputs), data_samples))


def test_train_step_passes_the_batch_by_name_with_or_without_extra_keys():
    net = SwappedNet()
    wrapper = OptimWrapper(torch.optim.SGD(net.parameters(), lr=0.1))
    batch = dict(inputs=torch.randn(4, 3), data_samples=torch.tensor([0, 1, 1, 0]))
    expected = F.cross_entropy(net.fc(batch["inputs"]), batch["data_samples"]).item()
    assert net.train_step(batch, wrapper)["loss"].item() == pytest.approx(expected)
    net.train_step(dict(batch, extra="x"), wrapper)  # a third key goes through **data
    assert net.extra_seen == [None, "x"]
