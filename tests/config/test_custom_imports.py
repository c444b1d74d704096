"""`custom_imports` in a config imports user modules so their registrations happen."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from minirunner.config import Config, ConfigError
from minirunner.registry import MODELS, Registry


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def module_name(monkeypatch, tmp_path):
    """A fresh, unique module name on sys.path (removed from sys.modules afterwards)."""
    name = f"user_mod_{uuid.uuid4().hex[:8]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_custom_imports_registers_user_class(tmp_path, module_name):
    registry = Registry("custom test", scope=f"scope_{module_name}")
    # The user module registers into a registry it reaches through this test module.
    holder = f"holder_{module_name}"
    sys.modules[holder] = type(sys)(holder)
    sys.modules[holder].REG = registry
    try:
        write(
            tmp_path / f"{module_name}.py",
            f"""
            from {holder} import REG

            @REG.register_module()
            class MyNet:
                def __init__(self, width=1):
                    self.width = width
            """,
        )
        cfg_path = write(
            tmp_path / "cfg.py",
            f"""
            custom_imports = dict(imports=['{module_name}'], allow_failed_imports=False)
            model = dict(type='MyNet', width=3)
            """,
        )
        assert registry.get("MyNet") is None
        cfg = Config.fromfile(cfg_path)
        assert module_name in sys.modules
        net = registry.build(cfg.model)
        assert type(net).__name__ == "MyNet"
        assert net.width == 3
        assert cfg.custom_imports.imports == [module_name]
    finally:
        sys.modules.pop(holder, None)


def test_custom_imports_with_root_registry(tmp_path, module_name):
    cls_name = f"Net_{module_name}"
    write(
        tmp_path / f"{module_name}.py",
        f"""
        from minirunner.registry import MODELS

        @MODELS.register_module()
        class {cls_name}:
            pass
        """,
    )
    cfg_path = write(tmp_path / "cfg.py", f"custom_imports = dict(imports='{module_name}')\n")
    try:
        Config.fromfile(cfg_path)
        assert MODELS.get(cls_name) is not None
    finally:
        MODELS._module_dict.pop(cls_name, None)


def test_import_custom_modules_false_skips_the_import(tmp_path, module_name):
    write(tmp_path / f"{module_name}.py", "x = 1\n")
    cfg_path = write(tmp_path / "cfg.py", f"custom_imports = dict(imports=['{module_name}'])\n")
    Config.fromfile(cfg_path, import_custom_modules=False)
    assert module_name not in sys.modules


def test_missing_module_is_a_config_error(tmp_path):
    cfg_path = write(tmp_path / "cfg.py", "custom_imports = dict(imports=['no_such_module_xyz'])\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(cfg_path)
    message = str(info.value)
    assert message.startswith("custom_imports.imports: ")
    assert str(cfg_path) in message
    assert "'no_such_module_xyz'" in message
    assert "cannot import" in message
    assert info.value.key == "custom_imports.imports"
    assert isinstance(info.value.__cause__, ImportError)


def test_allow_failed_imports_warns_instead(tmp_path, module_name):
    write(tmp_path / f"{module_name}.py", "loaded = True\n")
    cfg_path = write(
        tmp_path / "cfg.py",
        f"custom_imports = dict(imports=['no_such_module_xyz', '{module_name}'], allow_failed_imports=True)\n",
    )
    with pytest.warns(UserWarning, match=r"no_such_module_xyz.*allow_failed_imports=True"):
        cfg = Config.fromfile(cfg_path)
    # The modules after the failed one are still imported.
    assert module_name in sys.modules
    assert cfg.custom_imports.allow_failed_imports is True


def test_error_inside_user_module_is_not_swallowed(tmp_path, module_name):
    write(tmp_path / f"{module_name}.py", "raise RuntimeError('broken module')\n")
    cfg_path = write(tmp_path / "cfg.py", f"custom_imports = dict(imports=['{module_name}'])\n")
    with pytest.raises(RuntimeError, match="broken module"):
        Config.fromfile(cfg_path)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("['a']", "custom_imports must be dict(imports="),
        ("dict(modules=['a'])", "custom_imports must be dict(imports="),
        ("dict(imports=['a'], allow_failed=True)", "unknown key(s) ['allow_failed'] in custom_imports"),
    ],
)
def test_malformed_custom_imports(tmp_path, value, expected):
    cfg_path = write(tmp_path / "cfg.py", f"custom_imports = {value}\n")
    with pytest.raises(ConfigError) as info:
        Config.fromfile(cfg_path)
    assert expected in str(info.value)
    assert str(info.value).startswith("custom_imports: ")
