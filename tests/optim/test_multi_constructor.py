"""Several optimizers: MultiOptimWrapperConstructor and its selection by build_optim_wrapper."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import minirunner.optim.wrappers  # noqa: F401  (registers the wrappers)
from minirunner.optim.constructors import (
    DefaultOptimWrapperConstructor,
    MultiOptimWrapperConstructor,
    build_optim_wrapper,
)
from minirunner.optim.wrappers import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from minirunner.registry import OPTIM_WRAPPER_CONSTRUCTORS, config_key
from minirunner.utils import ConfigError


class GAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        self.discriminator = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))


def gan_cfg():
    return dict(
        generator=dict(optimizer=dict(type="Adam", lr=2e-4, betas=(0.5, 0.999))),
        discriminator=dict(
            optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-3),
            paramwise_cfg=dict(norm_decay_mult=0.0, bias_lr_mult=2.0),
            accumulative_counts=2,
        ),
    )


@pytest.fixture
def log_lines():
    lines: list[tuple[int, str]] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append((record.levelno, record.getMessage()))

    handler = Collect(level=logging.DEBUG)
    logger = logging.getLogger("minirunner")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def build_error(cfg, model=None) -> str:
    with pytest.raises(ConfigError) as error:
        with config_key("optim_wrapper"):
            build_optim_wrapper(model if model is not None else GAN(), cfg)
    return str(error.value)


@pytest.mark.parametrize("explicit", [False, True])
def test_one_wrapper_per_submodule(explicit):
    model = GAN()
    cfg = gan_cfg()
    if explicit:
        cfg["constructor"] = "MultiOptimWrapperConstructor"
    wrappers = build_optim_wrapper(model, cfg)
    assert isinstance(wrappers, OptimWrapperDict)
    assert list(wrappers) == ["generator", "discriminator"]
    gen, disc = wrappers["generator"], wrappers["discriminator"]
    assert isinstance(gen.optimizer, torch.optim.Adam)
    assert isinstance(disc.optimizer, torch.optim.SGD)

    # Disjoint parameters: each optimizer holds exactly its submodule's.
    gen_params = [p for g in gen.optimizer.param_groups for p in g["params"]]
    disc_params = [p for g in disc.optimizer.param_groups for p in g["params"]]
    assert [id(p) for p in gen_params] == [id(p) for p in model.generator.parameters()]
    assert [id(p) for p in disc_params] == [id(p) for p in model.discriminator.parameters()]

    # Each with its own lr and paramwise rules: the generator has no paramwise_cfg (one
    # group); the discriminator's biases get 2x lr and its LayerNorm no decay.
    assert len(gen.optimizer.param_groups) == 1
    assert [(g["lr"], g["weight_decay"]) for g in disc.optimizer.param_groups] == [
        (0.01, 1e-3), (0.02, 1e-3), (0.01, 0.0), (0.01, 0.0), (0.01, 1e-3), (0.02, 1e-3),
    ]
    assert wrappers.get_lr() == {
        "generator.lr": [2e-4],
        "discriminator.lr": [0.01, 0.02, 0.01, 0.01, 0.01, 0.02],
        "discriminator.base_lr": [0.01],
    }
    assert wrappers.get_momentum() == {
        "generator.momentum": [0.5], "discriminator.momentum": [0.9] * 6,
    }


def test_each_wrapper_trains_with_its_own_settings_and_state_dicts_are_keyed_by_name():
    torch.manual_seed(0)
    model = GAN()
    wrappers = build_optim_wrapper(model, gan_cfg())
    x = torch.randn(5, 2)
    disc_before = [p.detach().clone() for p in model.discriminator.parameters()]

    loss = model.discriminator(model.generator(x)).mean()
    wrappers["generator"].update_params(loss)
    # Only the generator's optimizer stepped (the discriminator has grads but no step).
    assert all(torch.equal(a, b) for a, b in zip(disc_before, model.discriminator.parameters()))

    state = wrappers.state_dict()
    assert list(state) == ["generator", "discriminator"]
    assert len(state["generator"]["state"]) == 4  # Adam state for the 4 generator parameters
    assert state["discriminator"]["state"] == {}

    fresh = build_optim_wrapper(GAN(), gan_cfg())
    fresh.load_state_dict(state)
    exp_avg = state["generator"]["state"][0]["exp_avg"]
    loaded = fresh["generator"].optimizer.state_dict()["state"][0]["exp_avg"]
    torch.testing.assert_close(loaded, exp_avg)


def test_sub_configs_keep_their_own_wrapper_type_and_constructor(log_lines):
    @OPTIM_WRAPPER_CONSTRUCTORS.register_module(force=True)
    class HalfLrConstructorForTest(DefaultOptimWrapperConstructor):
        def add_params(self, params, module, prefix="", is_dcn_module=None):
            params.extend({"params": [p], "lr": self.base_lr / 2} for p in module.parameters())

    cfg = dict(
        generator=dict(
            type="AmpOptimWrapper", dtype="bfloat16",
            optimizer=dict(type="SGD", lr=0.1),
            constructor="HalfLrConstructorForTest", paramwise_cfg=dict(anything=True),
        ),
        discriminator=dict(
            optimizer=dict(type="SGD", lr=0.1),
            paramwise_cfg=dict(custom_keys={"9": dict(lr_mult=0.1)}),
        ),
    )
    wrappers = build_optim_wrapper(GAN(), cfg)
    assert type(wrappers["generator"]) is AmpOptimWrapper
    assert type(wrappers["discriminator"]) is OptimWrapper
    assert {g["lr"] for g in wrappers["generator"].optimizer.param_groups} == {0.05}
    # The warning names the key's full path, optimizer name included.
    warnings = [msg for level, msg in log_lines if level == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("optim_wrapper.discriminator.paramwise_cfg.custom_keys: '9'")


def test_dotted_submodule_names():
    model = GAN()
    wrappers = build_optim_wrapper(model, {
        "discriminator.0": dict(optimizer=dict(type="SGD", lr=0.1)),
        "discriminator.2": dict(optimizer=dict(type="SGD", lr=0.2)),
        "generator": dict(optimizer=dict(type="SGD", lr=0.3)),
    })
    assert wrappers.get_lr() == {
        "discriminator.0.lr": [0.1], "discriminator.2.lr": [0.2], "generator.lr": [0.3],
    }


def test_uncovered_trainable_parameters_are_a_warning(log_lines):
    wrappers = build_optim_wrapper(GAN(), dict(generator=dict(optimizer=dict(type="SGD", lr=0.1))))
    assert list(wrappers) == ["generator"]
    (warning,) = [msg for level, msg in log_lines if level == logging.WARNING]
    assert "6 trainable parameter(s) belong to no optimizer" in warning
    assert "'discriminator.0.weight'" in warning


# ---------------------------------------------------------------------- bad input
def test_unknown_submodule_suggests_a_name():
    message = build_error(dict(generator=dict(optimizer=dict(type="SGD", lr=0.1)),
                               discriminater=dict(optimizer=dict(type="SGD", lr=0.1))))
    assert message.startswith("optim_wrapper.discriminater: the model (GAN) has no submodule")
    assert "Did you mean 'discriminator'" in message


def test_overlapping_submodules_are_an_error():
    message = build_error(dict(discriminator=dict(optimizer=dict(type="SGD", lr=0.1)),
                               **{"discriminator.1": dict(optimizer=dict(type="SGD", lr=0.1))}))
    assert message.startswith("optim_wrapper.discriminator.1: the parameters of 'discriminator.1'")
    assert "disjoint" in message


def test_errors_inside_a_sub_config_name_its_path():
    cfg = gan_cfg()
    cfg["discriminator"]["paramwise_cfg"] = dict(norm_decay_mul=0.0)
    message = build_error(cfg)
    assert message.startswith("optim_wrapper.discriminator.paramwise_cfg.norm_decay_mul: ")
    assert "Did you mean 'norm_decay_mult'" in message
    cfg = gan_cfg()
    cfg["generator"]["optimizer"]["type"] = "Adma"
    assert build_error(cfg).startswith("optim_wrapper.generator.optimizer.type: 'Adma'")


def test_top_level_paramwise_cfg_with_several_optimizers():
    cfg = dict(gan_cfg(), paramwise_cfg=dict(norm_decay_mult=0.0))
    message = build_error(cfg)
    assert message.startswith("optim_wrapper.paramwise_cfg: with several optimizers each one")
    assert "optim_wrapper.generator.paramwise_cfg" in message


def test_mixed_keys_are_not_taken_for_several_optimizers():
    # A wrapper option next to the submodule configs: not auto-detected, and the error
    # says what to do.
    cfg = dict(gan_cfg(), clip_grad=dict(max_norm=1.0))
    message = build_error(cfg)
    assert message.startswith("optim_wrapper.optimizer: the config has no 'optimizer' key")
    assert "'clip_grad'" in message and "MultiOptimWrapperConstructor" in message
    # With the constructor named explicitly, the bad entry is reported by its key.
    message = build_error(dict(cfg, constructor="MultiOptimWrapperConstructor"))
    assert message.startswith("optim_wrapper.clip_grad: with several optimizers every key")


def test_constructor_can_be_used_directly():
    constructor = MultiOptimWrapperConstructor(gan_cfg())
    assert set(constructor.constructors) == {"generator", "discriminator"}
    wrappers = constructor(GAN())
    assert isinstance(wrappers, OptimWrapperDict) and len(wrappers) == 2
