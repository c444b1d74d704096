"""Registry: registration, look-up by name, scope and import path, parents, lazy locations."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
import torch

from minirunner.registry import Registry


def fresh(name: str = "thing", **kwargs) -> Registry:
    kwargs.setdefault("scope", f"s{uuid.uuid4().hex[:8]}")
    return Registry(name, **kwargs)


# ---------------------------------------------------------------------------- registration
def test_register_as_decorator_returns_the_class():
    reg = fresh()

    @reg.register_module()
    class Net:
        pass

    assert Net.__name__ == "Net"
    assert reg.get("Net") is Net
    assert reg.module_dict == {"Net": Net}
    assert "Net" in reg and "Other" not in reg
    assert len(reg) == 1


def test_register_as_call_with_module():
    reg = fresh()

    def make_thing(x=1):
        return x

    assert reg.register_module(module=make_thing) is make_thing
    assert reg.register_module(name="alias", module=make_thing) is make_thing
    assert reg.get("make_thing") is make_thing
    assert reg.get("alias") is make_thing


def test_register_under_a_list_of_names():
    reg = fresh()

    @reg.register_module(name=["Short", "LongName"])
    class Thing:
        pass

    assert reg.get("Short") is Thing
    assert reg.get("LongName") is Thing
    assert reg.get("Thing") is None


def test_taken_name_without_force_is_an_error():
    reg = fresh("hook")

    @reg.register_module()
    class MyHook:
        pass

    class Other:
        pass

    with pytest.raises(KeyError) as info:
        reg.register_module(name="MyHook", module=Other)
    message = str(info.value)
    assert "'MyHook' is already registered in the 'hook' registry" in message
    assert "MyHook" in message and "force=True" in message
    assert reg.get("MyHook") is MyHook


def test_force_replaces():
    reg = fresh()

    @reg.register_module()
    class A:
        pass

    @reg.register_module(name="A", force=True)
    class B:
        pass

    assert reg.get("A") is B


def test_registering_the_same_object_twice_is_fine():
    reg = fresh()

    class A:
        pass

    reg.register_module(module=A)
    reg.register_module(module=A)
    assert reg.get("A") is A


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name=3), "name must be None, a str or a list of str"),
        (dict(name=["a", 1]), "name must be None, a str or a list of str"),
        (dict(force="yes"), "force must be a bool"),
        (dict(module=42), "only classes and functions can be registered"),
    ],
)
def test_bad_registration_arguments(kwargs, match):
    with pytest.raises(TypeError, match=match):
        fresh().register_module(**kwargs)


# ---------------------------------------------------------------------------- look-up
def test_get_unknown_plain_name_is_none():
    assert fresh().get("Nothing") is None


def test_get_rejects_non_string_keys():
    with pytest.raises(TypeError, match="registry keys are strings"):
        fresh().get(3)  # type: ignore[arg-type]


def test_children_fall_back_to_parent_and_scopes_resolve():
    parent = Registry("model", scope="rootproj")
    child = Registry("model", parent=parent, scope="myproj")

    @parent.register_module()
    class Base:
        pass

    @child.register_module()
    class Mine:
        pass

    @child.register_module(name="Base")
    class Shadow:
        pass

    assert child.parent is parent
    assert parent.children == {"myproj": child}
    assert child.root is parent and parent.root is parent
    assert child.scope == "myproj"
    # The child's own names first, then its parent's.
    assert child.get("Mine") is Mine
    assert child.get("Base") is Shadow
    # A parent does not look into its children without a scope.
    assert parent.get("Mine") is None
    # 'scope.Name' picks the registry of that scope, from either side.
    assert parent.get("myproj.Mine") is Mine
    assert parent.get("myproj.Base") is Shadow
    assert child.get("rootproj.Base") is Base
    assert child.get("myproj.Mine") is Mine
    assert child.get("rootproj.Mine") is None
    assert child.known_names() == ["Base", "Mine"]


def test_siblings_resolve_each_other_by_scope():
    parent = Registry("model", scope="p_sib")
    a = Registry("model", parent=parent, scope="proj_a")
    b = Registry("model", parent=parent, scope="proj_b")

    @a.register_module()
    class FromA:
        pass

    assert b.get("proj_a.FromA") is FromA
    assert b.get("FromA") is None


def test_grandchild_falls_back_two_levels():
    top = Registry("x", scope="top_gc")
    mid = Registry("x", parent=top, scope="mid_gc")
    low = Registry("x", parent=mid, scope="low_gc")

    @top.register_module()
    class Far:
        pass

    assert low.get("Far") is Far
    assert top.get("low_gc.Far") is Far


def test_two_children_with_the_same_scope_is_an_error():
    parent = fresh()
    Registry("x", parent=parent, scope="dup")
    with pytest.raises(KeyError, match="already has a child with scope 'dup'"):
        Registry("x", parent=parent, scope="dup")


def test_child_inherits_build_func():
    def build(cfg, registry):
        return ("built", cfg["type"], registry.name)

    parent = fresh("p", build_func=build)
    child = Registry("c", parent=parent, scope=f"c{uuid.uuid4().hex[:6]}")
    assert child.build_func is build
    assert child.build(dict(type="X")) == ("built", "X", "c")


def test_default_scope_is_the_callers_top_level_package():
    namespace = {"__name__": "myproject.models.heads", "Registry": Registry}
    exec("reg = Registry('model')", namespace)
    assert namespace["reg"].scope == "myproject"


def test_dotted_import_path():
    reg = fresh()
    assert reg.get("torch.optim.SGD") is torch.optim.SGD
    assert reg.get("torch.nn.modules.linear.Linear") is torch.nn.Linear
    assert reg.get("torch.optim.NoSuchOptimizer") is None
    assert reg.get("no_such_package_xyz.Thing") is None
    assert "torch.optim.Adam" in reg


def test_import_path_starting_with_a_scope_name():
    # The root registries have scope 'minirunner'; a full path under minirunner still imports.
    from minirunner.config import Config
    from minirunner.registry import MODELS

    assert MODELS.scope == "minirunner"
    assert MODELS.get("minirunner.config.Config") is Config
    assert MODELS.get("minirunner.config.config.Config") is Config


def test_registered_name_with_a_dot():
    reg = fresh()

    def fn():
        return 1

    reg.register_module(name="a.b", module=fn)
    assert reg.get("a.b") is fn


def test_repr_lists_names():
    reg = fresh("widget", scope="wscope")

    @reg.register_module()
    class B:
        pass

    @reg.register_module()
    class A:
        pass

    assert repr(reg) == "Registry(name='widget', scope='wscope', items=[A, B])"


# ---------------------------------------------------------------------------- lazy locations
@pytest.fixture
def location(tmp_path, monkeypatch):
    """Write a module into tmp_path and return its (unique) name; unloaded afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def make(source: str) -> str:
        name = f"loc_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        return name

    yield make
    for name in names:
        sys.modules.pop(name, None)


def test_locations_are_imported_lazily(location):
    holder = f"holder_{uuid.uuid4().hex[:8]}"
    sys.modules[holder] = type(sys)(holder)
    try:
        name = location(
            f"""
            from {holder} import REG

            @REG.register_module()
            class Lazy:
                def __init__(self, x=0):
                    self.x = x
            """
        )
        reg = fresh(locations=[name])
        sys.modules[holder].REG = reg
        assert name not in sys.modules
        obj = reg.build(dict(type="Lazy", x=2))
        assert name in sys.modules
        assert type(obj).__name__ == "Lazy" and obj.x == 2
    finally:
        sys.modules.pop(holder, None)


def test_get_also_imports_locations(location):
    name = location("imported = True\n")
    reg = fresh(locations=[name])
    reg.get("Anything")
    assert name in sys.modules


def test_missing_location_is_ignored():
    reg = fresh(locations=["no_such_location_xyz", "minirunner.no_such_submodule"])

    @reg.register_module()
    class A:
        pass

    assert reg.get("A") is A
    assert reg.build(dict(type="A")).__class__ is A


def test_location_that_raises_propagates(location):
    name = location("raise RuntimeError('broken location')\n")
    reg = fresh(locations=[name])
    with pytest.raises(RuntimeError, match="broken location"):
        reg.get("X")
    # The next look-up raises again instead of silently missing the location's names.
    sys.modules.pop(name, None)
    with pytest.raises(RuntimeError, match="broken location"):
        reg.get("X")


def test_location_importing_a_missing_module_propagates(location):
    name = location("import no_such_dependency_xyz\n")
    reg = fresh(locations=[name])
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        reg.get("X")


def test_location_importing_a_missing_module_whose_name_is_a_prefix(location):
    # The missing module's name is a string prefix of the location's name, but not its package.
    name = location("import loc\n")
    assert name.startswith("loc")
    reg = fresh(locations=[name])
    with pytest.raises(ModuleNotFoundError, match="'loc'"):
        reg.get("X")
