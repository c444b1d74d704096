"""The numbers of an ``optimizer`` config (lr, momentum, weight_decay, betas, eps...): a value
of the wrong type, or one the optimizer rejects as negative, is a ConfigError naming
``optim_wrapper.optimizer.<name>``, not "building SGD failed: TypeError: '<' not supported"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import minirunner.optim.wrappers  # noqa: F401  (registers the wrappers)
from minirunner.optim.constructors import build_optim_wrapper
from minirunner.registry import OPTIMIZERS, config_key
from minirunner.utils import ConfigError


class GAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Linear(2, 2)
        self.discriminator = nn.Linear(2, 1)


def _message(optim_wrapper: dict, model: nn.Module | None = None) -> str:
    with pytest.raises(ConfigError) as info, config_key("optim_wrapper"):
        build_optim_wrapper(model or nn.Linear(2, 2), optim_wrapper)
    return str(info.value)


@pytest.mark.parametrize(
    "optimizer, expected",
    [
        (dict(type="SGD", lr="fast"),
         "optim_wrapper.optimizer.lr: must be a non-negative number, got 'fast' (str); "
         "write e.g. lr=0.001 (SGD's default)"),
        (dict(type="SGD", lr=0.1, momentum="0.9"),
         "optim_wrapper.optimizer.momentum: must be a non-negative number, got '0.9' (str); "
         "write the number without quotes: momentum=0.9"),
        (dict(type="SGD", lr=0.1, weight_decay=None),
         "optim_wrapper.optimizer.weight_decay: must be a non-negative number, got None"),
        (dict(type="SGD", lr=True), "optim_wrapper.optimizer.lr: must be a non-negative number, got True"),
        # SGD only uses dampening in step(): without the check it would fail mid-training.
        (dict(type="SGD", lr=0.1, dampening="x"), "optim_wrapper.optimizer.dampening: must be a"),
        (dict(type="Adam", lr=0.1, betas=0.9),
         "optim_wrapper.optimizer.betas: must be a tuple of 2 non-negative numbers, like the default "
         "(0.9, 0.999), got 0.9 (float)"),
        (dict(type="Adam", lr=0.1, betas=(0.9, "0.999")), "optim_wrapper.optimizer.betas: must be a tuple"),
        (dict(type="AdamW", lr=0.1, eps="1e-8"),
         "optim_wrapper.optimizer.eps: must be a non-negative number, got '1e-8' (str); "
         "write the number without quotes: eps=1e-08"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(optimizer, expected):
    assert _message(dict(optimizer=optimizer)).startswith(expected)


@pytest.mark.parametrize(
    "optimizer, expected",
    [
        (dict(type="SGD", lr=-0.1),
         "optim_wrapper.optimizer.lr: must be non-negative, got -0.1 (SGD raised: Invalid learning "
         "rate: -0.1); use a value >= 0"),
        (dict(type="SGD", lr=0.1, momentum=-0.9), "optim_wrapper.optimizer.momentum: must be non-negative"),
        (dict(type="Adam", lr=0.1, betas=(-0.5, 0.999)),
         "optim_wrapper.optimizer.betas: must be non-negative, got (-0.5, 0.999) (Adam raised: "
         "Invalid beta parameter at index 0: -0.5); use values >= 0"),
    ],
)
def test_a_negative_value_the_optimizer_rejects_names_its_key(optimizer, expected):
    assert _message(dict(optimizer=optimizer)).startswith(expected)


def test_other_rejections_keep_the_optimizers_message():
    # Nothing negative to blame: the optimizer's own words, under the optimizer's key.
    message = _message(dict(optimizer=dict(type="Adam", lr=0.1, betas=(1.5, 0.999))))
    assert message == (
        "optim_wrapper.optimizer: building Adam failed: ValueError: Invalid beta parameter at index 0: 1.5"
    )


def test_the_constructor_checks_lr_before_multiplying_it():
    # paramwise_cfg multiplies lr before the optimizer exists; that used to be a TypeError.
    message = _message(dict(optimizer=dict(type="SGD", lr="0.1"), paramwise_cfg=dict(bias_lr_mult=2.0)))
    assert message.startswith("optim_wrapper.optimizer.lr: must be a non-negative number, got '0.1'")


def test_each_optimizer_of_several_is_checked_under_its_name():
    message = _message(
        dict(
            generator=dict(optimizer=dict(type="Adam", lr=2e-4)),
            discriminator=dict(optimizer=dict(type="SGD", lr="fast")),
        ),
        GAN(),
    )
    assert message.startswith("optim_wrapper.discriminator.optimizer.lr: must be a non-negative number")


def test_what_torch_accepts_still_builds():
    wrapper = build_optim_wrapper(
        nn.Linear(2, 2), dict(optimizer=dict(type="Adam", lr=torch.tensor(0.01), betas=[0.8, 0.99], eps=1))
    )
    assert tuple(wrapper.optimizer.param_groups[0]["betas"]) == (0.8, 0.99)
    # Adafactor's eps default is (None, 1e-3): None stays allowed where the default has it,
    # and its beta2_decay default is negative, so a negative value is not "non-negative".
    wrapper = build_optim_wrapper(
        nn.Linear(2, 2), dict(optimizer=dict(type="Adafactor", lr=0.01, eps=(None, 1e-3), beta2_decay=-0.5))
    )
    assert wrapper.optimizer.param_groups[0]["eps"] == (None, 1e-3)
    message = _message(dict(optimizer=dict(type="Adafactor", lr=0.01, beta2_decay="x")))
    assert message.startswith("optim_wrapper.optimizer.beta2_decay: must be a number, got 'x' (str)")


class Signed(torch.optim.SGD):
    """A user optimizer whose numeric argument has a negative default and no range."""

    def __init__(self, params, lr: float = 0.1, offset: float = -1.0, scale: float = 1.0) -> None:
        if scale == 0:
            raise ValueError(f"scale must not be 0 (offset {offset})")
        super().__init__(params, lr=lr)
        self.offset = offset


def test_user_optimizers_are_checked_from_their_signature():
    OPTIMIZERS.register_module(module=Signed, force=True)
    try:
        message = _message(dict(optimizer=dict(type="Signed", offset="-2")))
        assert message.startswith("optim_wrapper.optimizer.offset: must be a number, got '-2' (str); ")
        # offset=-2 shows in the message, but its default is negative: it is not blamed.
        message = _message(dict(optimizer=dict(type="Signed", offset=-2.0, scale=0)))
        assert message.startswith("optim_wrapper.optimizer: building Signed failed: ValueError: scale")
    finally:
        OPTIMIZERS.module_dict.pop("Signed")
