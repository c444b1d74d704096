"""DefaultScope, init_default_scope, Registry.switch_scope_and_registry, split_scope_key,
and builds that look names up in the default scope's registry (MMEngine's behaviour)."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest

from minirunner.config import ConfigError
from minirunner.registry import DefaultScope, Registry, build_from_cfg, init_default_scope


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------- split_scope_key
@pytest.mark.parametrize(
    "key, expected",
    [
        ("mmdet.ResNet", ("mmdet", "ResNet")),
        ("ResNet", (None, "ResNet")),
        ("a.b.C", ("a", "b.C")),  # only the first dot splits
    ],
)
def test_split_scope_key(key, expected):
    assert Registry.split_scope_key(key) == expected


# ---------------------------------------------------------------------------- DefaultScope
def test_no_default_scope_is_none():
    assert DefaultScope.get_current_instance() is None


def test_default_scope_instances_are_named_and_the_newest_is_current():
    first = DefaultScope.get_instance("task_a", scope_name="mmdet")
    assert first.scope_name == "mmdet" and first.instance_name == "task_a"
    assert DefaultScope.get_current_instance() is first
    second = DefaultScope.get_instance("task_b", scope_name="mmcls")
    assert DefaultScope.get_current_instance() is second
    assert DefaultScope.get_instance("task_a") is first
    assert DefaultScope.get_current_instance() is first


def test_overwrite_default_scope_is_temporary():
    DefaultScope.get_instance("outer", scope_name="custom")
    with DefaultScope.overwrite_default_scope("mmcls"):
        assert DefaultScope.get_current_instance().scope_name == "mmcls"
    assert DefaultScope.get_current_instance().scope_name == "custom"
    assert list(DefaultScope._instance_dict) == ["outer"]
    with DefaultScope.overwrite_default_scope(None):
        assert DefaultScope.get_current_instance().scope_name == "custom"


def test_overwrite_default_scope_restores_after_an_error():
    with pytest.raises(RuntimeError):
        with DefaultScope.overwrite_default_scope("mmcls"):
            raise RuntimeError("boom")
    assert DefaultScope.get_current_instance() is None


def test_init_default_scope_creates_once_and_switches_back_with_a_warning():
    init_default_scope("mmdet")
    assert DefaultScope.get_current_instance().scope_name == "mmdet"
    assert DefaultScope.check_instance_created("mmdet")
    init_default_scope("mmdet")  # nothing new
    assert len(DefaultScope._instance_dict) == 1
    init_default_scope("mmcls")  # first time for this scope: no warning
    assert DefaultScope.get_current_instance().scope_name == "mmcls"
    with pytest.warns(UserWarning, match="current default scope is 'mmcls'"):
        init_default_scope("mmdet")
    assert DefaultScope.get_current_instance().scope_name == "mmdet"


# ---------------------------------------------------------------------------- switch_scope_and_registry
@pytest.fixture
def tree():
    """MMEngine's documented example: a root MODELS with mmdet, mmcls and custom children."""
    root = Registry("model", scope=unique("root"))
    scopes = {name: unique(name) for name in ("mmdet", "mmcls", "custom")}
    children = {name: Registry(f"{name}_model", parent=root, scope=scope) for name, scope in scopes.items()}
    return root, scopes, children


def test_switch_scope_yields_the_scopes_registry_and_restores(tree):
    root, scopes, children = tree
    DefaultScope.get_instance(unique("scope"), scope_name=scopes["custom"])
    custom = children["custom"]
    with custom.switch_scope_and_registry(scopes["mmcls"]) as registry:
        assert registry is children["mmcls"]
        assert DefaultScope.get_current_instance().scope_name == scopes["mmcls"]
    with custom.switch_scope_and_registry(scopes["mmdet"]) as mmdet_registry:
        assert mmdet_registry is children["mmdet"]
        with custom.switch_scope_and_registry(scopes["mmcls"]) as mmcls_registry:
            assert mmcls_registry is children["mmcls"]
            assert DefaultScope.get_current_instance().scope_name == scopes["mmcls"]
        assert DefaultScope.get_current_instance().scope_name == scopes["mmdet"]
    assert DefaultScope.get_current_instance().scope_name == scopes["custom"]


def test_switch_scope_none_uses_the_current_default_scope(tree):
    root, scopes, children = tree
    with root.switch_scope_and_registry(None) as registry:
        assert registry is root  # no default scope at all
    DefaultScope.get_instance(unique("scope"), scope_name=scopes["mmdet"])
    with root.switch_scope_and_registry(None) as registry:
        assert registry is children["mmdet"]


def test_switch_to_a_scope_missing_from_the_tree_yields_the_registry_itself(tree):
    root, scopes, children = tree
    with children["mmcls"].switch_scope_and_registry(unique("nowhere")) as registry:
        assert registry is children["mmcls"]


# ---------------------------------------------------------------------------- building under a default scope
@pytest.fixture
def project():
    root = Registry("model", scope=unique("base"))
    child = Registry("model", parent=root, scope=unique("proj"))

    @root.register_module()
    class Base:
        pass

    @child.register_module()
    class Mine:
        pass

    @child.register_module(name="Base")
    class Shadow:
        pass

    return root, child, dict(Base=Base, Mine=Mine, Shadow=Shadow)


def test_build_looks_in_the_default_scopes_registry_then_its_parents(project):
    root, child, classes = project
    DefaultScope.get_instance(unique("run"), scope_name=child.scope)
    assert isinstance(root.build(dict(type="Mine")), classes["Mine"])
    assert isinstance(build_from_cfg(dict(type="Base"), root), classes["Shadow"])  # the child shadows
    # get() itself does not depend on the default scope.
    assert root.get("Mine") is None


def test_build_under_the_root_scope_does_not_see_a_childs_names(project):
    root, child, classes = project
    DefaultScope.get_instance(unique("run"), scope_name=root.scope)
    # As in MMEngine: the default scope picks the registry, even when build is called on
    # the child; the child's own names then need 'scope.Name'.
    with pytest.raises(KeyError) as info:
        child.build(dict(type="Mine"))
    message = str(info.value)
    assert f"is registered in scope '{child.scope}'" in message
    assert f"'{child.scope}.Mine'" in message and f"default_scope='{child.scope}'" in message
    assert isinstance(child.build(dict(type=f"{child.scope}.Mine")), classes["Mine"])
    assert isinstance(child.build(dict(type="Base")), classes["Base"])


def test_without_a_default_scope_each_registry_builds_from_itself(project):
    root, child, classes = project
    assert isinstance(child.build(dict(type="Mine")), classes["Mine"])
    assert isinstance(child.build(dict(type="Base")), classes["Shadow"])
    with pytest.raises(ConfigError, match="is not registered"):
        root.build(dict(type="Mine"))


def test_scope_key_in_cfg_builds_under_that_scope_for_this_build_only(project):
    root, child, classes = project
    cfg = dict(type="Mine", _scope_=child.scope)
    assert isinstance(root.build(cfg), classes["Mine"])
    assert cfg == dict(type="Mine", _scope_=child.scope)  # not mutated
    assert DefaultScope.get_current_instance() is None
    with pytest.raises(KeyError):
        root.build(dict(type="Mine"))


def test_unknown_type_names_a_default_scope_missing_from_the_tree(project):
    root, child, classes = project
    missing = unique("elsewhere")
    DefaultScope.get_instance(unique("run"), scope_name=missing)
    with pytest.raises(KeyError) as info:
        root.build(dict(type="Nope"))
    assert f"the default scope '{missing}' has no registry in this tree" in str(info.value)
    # Names of the registry itself still build (MMEngine falls back to it).
    assert isinstance(root.build(dict(type="Base")), classes["Base"])


# ---------------------------------------------------------------------------- <scope>.registry auto-import
@pytest.fixture
def package(tmp_path, monkeypatch):
    """A downstream package `<name>` whose `registry` module makes a child of REG."""
    monkeypatch.syspath_prepend(str(tmp_path))
    holder = unique("holder")
    name = unique("pkg")
    parent = Registry("model", scope=unique("parent"))
    sys.modules[holder] = type(sys)(holder)
    sys.modules[holder].REG = parent
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / name / "registry.py").write_text(
        textwrap.dedent(
            f"""
            from minirunner.registry import Registry
            from {holder} import REG

            MODELS = Registry('model', parent=REG)  # scope inferred: '{name}'

            @MODELS.register_module()
            class Downstream:
                pass
            """
        ),
        encoding="utf-8",
    )
    yield name, parent
    for module in (holder, name, f"{name}.registry"):
        sys.modules.pop(module, None)


def test_scoped_name_imports_the_scopes_registry_module(package):
    name, parent = package
    assert f"{name}.registry" not in sys.modules
    found = parent.get(f"{name}.Downstream")
    assert found is not None and found.__name__ == "Downstream"
    assert parent.children[name].scope == name


def test_default_scope_imports_the_scopes_registry_module(package):
    name, parent = package
    init_default_scope(name)
    assert type(parent.build(dict(type="Downstream"))).__name__ == "Downstream"
