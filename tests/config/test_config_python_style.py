"""Pure-Python ("new style") configs: `with read_base(): from .base import *` and classes as `type`.

Written from MMEngine's config tutorial ("A Pure Python style Configuration File"): bases are
imported inside `read_base()`, inheritance follows Python's import rules, `update` on an
inherited dict is recursive, `merge` follows the `_base_` rules, a class may be the `type`,
and a dump writes the class's full import path, which loads back through the registry.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minirunner.config import Config, ConfigDict, ConfigError, DictAction, read_base
from minirunner.registry import Registry, build_from_cfg

SCHEDULE = """
from torch.optim import SGD

lr = 0.1
optimizer = dict(type=SGD, lr=lr, momentum=0.9)
max_epochs = 3
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(tmp_path / "_base_" / "schedule.py", SCHEDULE)
    write(tmp_path / "_base_" / "model.py", "model = dict(type='MLP', hidden=64, head=dict(num_classes=10))\n")
    return tmp_path


def test_star_import_from_parent_folder_and_class_type(tree):
    child = write(
        tree / "exp" / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from .._base_.schedule import *
            from .._base_.model import *

        max_epochs = 12
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.optimizer.type is torch.optim.SGD
    assert cfg.optimizer.lr == 0.1 and cfg.optimizer.momentum == 0.9
    assert cfg.max_epochs == 12
    assert cfg.model.head.num_classes == 10
    assert isinstance(cfg.model, ConfigDict)
    # The imports are tools, not settings.
    assert "SGD" not in cfg and "read_base" not in cfg
    assert set(cfg) == {"lr", "optimizer", "max_epochs", "model"}


def test_named_imports_and_renaming(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import lr, optimizer as base_optimizer

        optimizer = dict(base_optimizer, lr=lr * 10)
        """,
    )
    cfg = Config.fromfile(child)
    # Only the imported names are settings, under their new names.
    assert set(cfg) == {"lr", "base_optimizer", "optimizer"}
    assert cfg.optimizer.lr == pytest.approx(1.0)
    assert cfg.base_optimizer.lr == 0.1
    assert cfg.optimizer.type is torch.optim.SGD


def test_update_on_an_inherited_dict_is_recursive(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.model import *

        model.update(head=dict(num_classes=3))
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.model.to_dict() == {"type": "MLP", "hidden": 64, "head": {"num_classes": 3}}


def test_merge_with_delete_replaces_the_inherited_dict(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *

        optimizer.merge(dict(_delete_=True, type='Adam', lr=0.01))
        """,
    )
    assert Config.fromfile(child).optimizer.to_dict() == {"type": "Adam", "lr": 0.01}


def test_reassigning_replaces_instead_of_merging(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *

        optimizer = dict(type='Adam', lr=0.01)
        """,
    )
    assert Config.fromfile(child).optimizer.to_dict() == {"type": "Adam", "lr": 0.01}


def test_changing_an_import_does_not_change_another_import_of_the_same_base(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.model import model
            from ._base_.model import model as pristine

        model.head.num_classes = 99
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.model.head.num_classes == 99
    assert cfg.pristine.head.num_classes == 10


def test_chain_of_python_style_bases_and_an_old_style_base(tree):
    write(tree / "_base_" / "old.py", "_base_ = ['model.py']\nmodel = dict(hidden=128)\n")
    write(
        tree / "mid.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.old import *
            from ._base_.schedule import *
        """,
    )
    child = write(
        tree / "top.py",
        """
        from minirunner.config import read_base

        with read_base():
            from .mid import *

        # SGD came along with the star import of the base that imported it.
        other = dict(type=SGD)
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.model.hidden == 128 and cfg.model.type == "MLP"
    assert cfg.other.type is torch.optim.SGD


def test_old_style_config_may_name_a_python_style_base(tree):
    write(
        tree / "mid.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *
        """,
    )
    child = write(tree / "old_child.py", "_base_ = 'mid.py'\noptimizer = dict(lr=0.5)\n")
    cfg = Config.fromfile(child)
    assert cfg.optimizer.type is torch.optim.SGD
    assert cfg.optimizer.lr == 0.5 and cfg.optimizer.momentum == 0.9


def test_absolute_import_of_a_config_inside_a_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "cfgpkg_for_test"
    write(package / "__init__.py", "")
    write(package / "configs" / "runtime.py", "log_level = 'INFO'\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    child = write(
        tmp_path / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from cfgpkg_for_test.configs.runtime import *
        """,
    )
    assert Config.fromfile(child).log_level == "INFO"
    sys.modules.pop("cfgpkg_for_test", None)


def test_text_holds_the_file_and_its_bases(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *
            from ._base_.schedule import lr as again
        """,
    )
    cfg = Config.fromfile(child)
    assert cfg.filename == str(child)
    assert "momentum=0.9" in cfg.text and "lr as again" in cfg.text
    assert cfg.text.count(f"# {tree / '_base_' / 'schedule.py'}") == 1


def test_class_type_survives_cfg_options_and_registry_builds_it(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *
        """,
    )
    cfg = Config.fromfile(child)
    cfg.merge_from_dict({"optimizer.lr": 0.5, "optimizer.momentum": 0.0})
    assert cfg.optimizer.type is torch.optim.SGD
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = build_from_cfg(cfg.optimizer, Registry("test_optimizers"), dict(params=params))
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["lr"] == 0.5


def test_cfg_options_can_replace_a_class_type_by_import_path(tree):
    import argparse

    child = write(tree / "child.py", "from torch.optim import SGD\noptimizer = dict(type=SGD, lr=0.1)\n")
    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg-options", nargs="+", action=DictAction)
    options = parser.parse_args(["--cfg-options", "optimizer.type=torch.optim.Adam"]).cfg_options
    cfg = Config.fromfile(child)
    cfg.merge_from_dict(options)
    params = [torch.nn.Parameter(torch.zeros(2))]
    built = build_from_cfg(cfg.optimizer, Registry("test_optimizers"), dict(params=params))
    assert type(built) is torch.optim.Adam


@pytest.mark.parametrize("suffix", [".py", ".json", ".yaml"])
def test_dump_writes_the_import_path_and_reloads_equal(tree, suffix):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base
        import torch.nn as nn

        with read_base():
            from ._base_.schedule import *

        act = dict(type=nn.ReLU, inplace=False)
        """,
    )
    cfg = Config.fromfile(child)
    out = tree / f"dumped{suffix}"
    cfg.dump(out)
    reloaded = Config.fromfile(out)
    # MMEngine's tutorial: the exported `type` is the full module path, as a string...
    assert isinstance(reloaded.optimizer.type, str)
    assert reloaded.optimizer.type.endswith(".SGD") and reloaded.optimizer.type.startswith("torch.optim")
    # ...which loads back to an equal config and builds the same class.
    assert reloaded == cfg
    params = [torch.nn.Parameter(torch.zeros(2))]
    built = build_from_cfg(reloaded.optimizer, Registry("test_optimizers"), dict(params=params))
    assert type(built) is torch.optim.SGD
    assert type(build_from_cfg(reloaded.act, Registry("test_acts"))) is torch.nn.ReLU


def test_pretty_text_of_python_style_config_uses_the_public_path(tree):
    child = write(tree / "child.py", "from torch.optim import SGD\noptimizer = dict(type=SGD)\n")
    assert "type='torch.optim.SGD'" in Config.fromfile(child).pretty_text


def test_read_base_does_nothing_at_run_time():
    with read_base():
        value = 1
    assert value == 1


# ---------------------------------------------------------------------------- errors
def test_missing_name_in_base_names_files_and_suggests(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import optimzer
        """,
    )
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert f"{child}, line 4" in message
    assert "schedule.py defines no 'optimzer'" in message
    assert "Did you mean 'optimizer'?" in message


def test_missing_base_file_says_where_it_looked(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedul import *
        """,
    )
    with pytest.raises(ConfigError) as info:
        Config.fromfile(child)
    message = str(info.value)
    assert f"{child}, line 4" in message
    assert str(tree / "_base_" / "schedul.py") in message


def test_other_statements_inside_read_base_are_an_error(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            lr = 0.1
        """,
    )
    with pytest.raises(ConfigError, match=r"line 4: only `from <config file> import \.\.\.` statements"):
        Config.fromfile(child)


def test_relative_import_outside_read_base_is_an_error(tree):
    child = write(tree / "child.py", "from ._base_.schedule import *\n")
    with pytest.raises(ConfigError, match=r"line 1: a relative import of a config file .* must stand inside"):
        Config.fromfile(child)


def test_base_assignment_in_a_python_style_config_is_an_error(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        _base_ = ['_base_/model.py']
        with read_base():
            from ._base_.schedule import *
        """,
    )
    with pytest.raises(ConfigError, match="cannot also set _base_"):
        Config.fromfile(child)


def test_circular_read_base_imports(tree):
    write(tree / "a.py", "from minirunner.config import read_base\nwith read_base():\n    from .b import *\n")
    write(tree / "b.py", "from minirunner.config import read_base\nwith read_base():\n    from .a import *\n")
    with pytest.raises(ConfigError, match=r"circular .*a\.py -> b\.py -> a\.py"):
        Config.fromfile(tree / "a.py")


def test_runtime_error_after_read_base_names_the_line(tree):
    child = write(
        tree / "child.py",
        """
        from minirunner.config import read_base

        with read_base():
            from ._base_.schedule import *

        lr = undefined_name
        """,
    )
    with pytest.raises(ConfigError, match=rf"{child}, line 6: NameError"):
        Config.fromfile(child)
