"""Registry errors are ConfigErrors and also the classes MMEngine code catches:
KeyError for an unknown or missing `type`, TypeError for a config of the wrong type."""

from __future__ import annotations

import uuid

import pytest

from minirunner.config import ConfigError
from minirunner.registry import Registry, RegistryKeyError, RegistryTypeError, build_from_cfg, config_key
from minirunner.utils import one_line_error


class Net:
    def __init__(self, depth=1):
        self.depth = depth


@pytest.fixture
def reg() -> Registry:
    registry = Registry("model", scope=f"s{uuid.uuid4().hex[:8]}")
    registry.register_module(module=Net)
    return registry


def test_unknown_type_is_caught_as_key_error_with_our_message(reg):
    try:
        reg.build(dict(type="Nett"))
    except KeyError as error:  # what MMEngine code writes
        caught = error
    assert isinstance(caught, ConfigError) and isinstance(caught, RegistryKeyError)
    message = str(caught)
    # KeyError would normally quote its message: ours reads as written.
    assert message.startswith("type: 'Nett' is not registered in the 'model' registry")
    assert not message.startswith('"') and not message.startswith("'type")
    assert "Did you mean 'Net'?" in message


def test_unknown_type_is_caught_as_config_error_and_keeps_the_key_path(reg):
    with pytest.raises(ConfigError) as info:
        with config_key("model"):
            build_from_cfg(dict(type="Nett"), reg)
    assert isinstance(info.value, KeyError)
    assert info.value.key == "model.type"
    assert str(info.value).startswith("model.type: 'Nett' is not registered")
    assert one_line_error(info.value) == f"config error: {info.value}"


def test_missing_type_is_a_key_error(reg):
    with pytest.raises(KeyError) as info:
        reg.build(dict(depth=2))
    assert isinstance(info.value, ConfigError)
    assert "has no 'type' key" in str(info.value)


@pytest.mark.parametrize("cfg", [["Net"], "Net", 3])
def test_cfg_that_is_not_a_dict_is_a_type_error(reg, cfg):
    with pytest.raises(TypeError) as info:
        reg.build(cfg)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, RegistryTypeError)
    assert str(info.value).startswith("expected a dict config for the 'model' registry")


@pytest.mark.parametrize("bad_type", [3, 2.5, ["Net"]])
def test_type_that_is_neither_name_nor_class_is_a_type_error(reg, bad_type):
    with pytest.raises(TypeError) as info:
        reg.build(dict(type=bad_type))
    assert isinstance(info.value, ConfigError)
    assert info.value.key == "type"
    assert str(info.value).startswith("type: 'type' must be a registered name or a class/function")


def test_registry_argument_must_be_a_registry():
    with pytest.raises(TypeError, match="registry must be a minirunner Registry"):
        build_from_cfg(dict(type="Net"), object())  # type: ignore[arg-type]


def test_str_of_errors_is_the_message_also_for_plain_key_error_formatting(reg):
    with pytest.raises(RegistryKeyError) as info:
        reg.build(dict(type="Nope"))
    error = info.value
    assert str(error) == f"type: {error.problem}"
    assert f"{error}" == str(error)


class _Raises:
    """A registered class whose constructor fails with the exception it is given."""

    def __init__(self, error: str) -> None:
        raise {"type": TypeError("bad"), "key": KeyError("missing"), "os": OSError("disk"),
               "value": ValueError("odd")}[error]


@pytest.mark.parametrize("error, also", [("type", TypeError), ("key", KeyError), ("value", ValueError)])
def test_a_constructors_exception_stays_catchable_by_its_class(error, also):
    registry = Registry("thing", scope="errors-test-constructors")
    registry.register_module(module=_Raises)
    with pytest.raises(also) as caught:
        with config_key("things.0"):
            registry.build(dict(type="_Raises", error=error))
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith("things.0: building _Raises failed: ")


def test_an_exception_class_that_cannot_be_combined_is_a_plain_config_error():
    registry = Registry("thing", scope="errors-test-os")
    registry.register_module(module=_Raises)
    with pytest.raises(ConfigError, match="building _Raises failed: OSError: disk"):
        registry.build(dict(type="_Raises", error="os"))
