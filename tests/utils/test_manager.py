"""ManagerMixin: named instances per class, the newest looked-up one current."""

from __future__ import annotations

import pytest

from minirunner.utils import ManagerMixin


class Tracker(ManagerMixin):
    def __init__(self, name: str = "", unit: str = "s") -> None:
        super().__init__(name)
        self.unit = unit


class Other(ManagerMixin):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)


def test_get_instance_creates_once_and_makes_current():
    first = Tracker.get_instance("mgr-a", unit="ms")
    assert first.unit == "ms" and first.instance_name == "mgr-a"
    second = Tracker.get_instance("mgr-b")
    assert Tracker.get_current_instance() is second
    assert Tracker.get_instance("mgr-a") is first
    assert Tracker.get_current_instance() is first  # looking it up makes it current again
    assert Tracker.check_instance_created("mgr-b") and not Tracker.check_instance_created("mgr-z")


def test_each_class_has_its_own_instances():
    Tracker.get_instance("mgr-shared")
    with pytest.raises(RuntimeError, match="get_instance"):
        Other.get_current_instance()
    assert not Other.check_instance_created("mgr-shared")


def test_arguments_for_an_existing_instance_warn_and_are_ignored():
    Tracker.get_instance("mgr-c", unit="h")
    with pytest.warns(UserWarning, match="ignores the arguments"):
        assert Tracker.get_instance("mgr-c", unit="d").unit == "h"


def test_a_name_is_required():
    with pytest.raises(ValueError, match="non-empty"):
        Tracker(name="")
    with pytest.raises(TypeError, match="name"):
        class NoName(ManagerMixin):  # noqa: F841 (the class statement is the test)
            def __init__(self, size: int = 0) -> None:
                super().__init__("x")
