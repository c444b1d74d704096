"""Runner.from_cfg / Runner(**kwargs): which keys are read, ignored, warned about or rejected."""

from __future__ import annotations

import os
import warnings

import pytest

from minirunner.config import Config
from minirunner.runner import Runner
from minirunner.utils import ConfigError
from runner_support import loader_cfg


def _data(num_samples: int = 8, batch_size: int = 4, shuffle: bool = True) -> dict:
    return loader_cfg(num_samples, batch_size, shuffle)


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        default_hooks=dict(checkpoint=None),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


def _runner_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "not used by the Runner" in str(w.message)]


def test_from_cfg_ignores_helper_variables(tmp_path):
    cfg = Config(_cfg(tmp_path, lr=0.1, num_classes=2, data_root="data/", max_epochs=1, tta_model=dict(type="X")))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        runner = Runner.from_cfg(cfg)
    assert _runner_warnings(record) == []
    assert runner.cfg["lr"] == 0.1  # kept in the config, only not passed to the Runner
    runner.train()


def test_a_near_miss_of_a_known_key_is_a_config_error(tmp_path):
    # Issue 21: a warning let training go on with the base config's value in force.
    cfg = _cfg(tmp_path, defualt_hooks=dict(logger=dict(interval=1)))
    with pytest.raises(ConfigError, match=r"'defualt_hooks'.*Did you mean 'default_hooks'"):
        Runner.from_cfg(Config(cfg))
    assert not os.path.exists(tmp_path / "work")


def test_misspelt_optim_wrapper_is_named_before_the_missing_group(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["optim_wraper"] = cfg.pop("optim_wrapper")
    with pytest.raises(ConfigError, match=r"'optim_wraper'.*Did you mean 'optim_wrapper'\? Fix the name"):
        Runner.from_cfg(Config(cfg))


def test_a_near_miss_that_the_config_uses_is_a_helper_variable(tmp_path):
    # `custom_hook` is close to custom_hooks, but the config reads it: not a typo.
    body = _cfg(tmp_path / "work")
    text = "custom_hook = dict(type='EMAHook')\ncustom_hooks = [custom_hook]\n" + "\n".join(
        f"{key} = {value!r}" for key, value in body.items()
    )
    path = tmp_path / "helper.py"
    path.write_text(text + "\n")
    runner = Runner.from_cfg(Config.fromfile(str(path)))
    assert any(type(hook).__name__ == "EMAHook" for hook in runner.hooks)


def test_runner_kwargs_reject_unknown_arguments_with_suggestion(tmp_path):
    cfg = _cfg(tmp_path)
    cfg["optim_wraper"] = cfg.pop("optim_wrapper")
    with pytest.raises(ConfigError, match=r"optim_wraper.*Did you mean 'optim_wrapper'"):
        Runner(**cfg)
    with pytest.raises(ConfigError, match="lr"):
        Runner(**_cfg(tmp_path), lr=0.1)


def test_runner_kwargs_and_from_cfg_take_the_same_keys(tmp_path):
    direct = Runner(**_cfg(tmp_path / "a"))
    from_cfg = Runner.from_cfg(_cfg(tmp_path / "b"))  # a plain dict works too
    assert type(direct.model) is type(from_cfg.model)
    assert direct.work_dir != from_cfg.work_dir
    assert direct.train() is direct.model


@pytest.mark.parametrize(
    "drop, missing",
    [
        ("optim_wrapper", "optim_wrapper"),
        ("train_cfg", "train_cfg"),
        ("train_dataloader", "train_dataloader"),
    ],
)
def test_incomplete_train_group_is_an_error(tmp_path, drop, missing):
    cfg = _cfg(tmp_path)
    del cfg[drop]
    with pytest.raises(ConfigError, match=missing):
        Runner(**cfg)


def test_incomplete_val_and_test_groups_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="val_evaluator"):
        Runner(**_cfg(tmp_path, val_dataloader=_data(), val_cfg=dict()))
    with pytest.raises(ConfigError, match="test_dataloader"):
        Runner(**_cfg(tmp_path, test_cfg=dict(), test_evaluator=dict(type="Accuracy")))


def test_train_without_train_group_is_a_clear_error(tmp_path):
    cfg = _cfg(tmp_path)
    for key in ("train_dataloader", "train_cfg", "optim_wrapper"):
        del cfg[key]
    runner = Runner(**cfg)
    with pytest.raises(RuntimeError, match="train_dataloader"):
        runner.train()


def test_bad_model_type_names_the_key_and_suggests(tmp_path):
    with pytest.raises(ConfigError, match=r"model.*MLPClassifier"):
        Runner(**_cfg(tmp_path, model=dict(type="MLPClasifier", in_features=4)))


def test_error_while_building_is_a_config_error_with_key_path(tmp_path):
    runner = Runner(**_cfg(tmp_path, train_dataloader=_data(batch_size=0)))
    with pytest.raises(ConfigError, match=r"train_dataloader\.batch_size"):
        runner.train()


def test_bad_optimizer_type_fails_before_training(tmp_path):
    runner = Runner(**_cfg(tmp_path, optim_wrapper=dict(optimizer=dict(type="SDG", lr=0.1))))
    with pytest.raises(ConfigError, match=r"optim_wrapper\.optimizer.*SGD"):
        runner.train()
    assert runner.iter == 0


def test_work_dir_defaults_to_work_dirs_config_name(tmp_path, monkeypatch):
    config = tmp_path / "my_experiment.py"
    body = _cfg(tmp_path)
    del body["work_dir"]
    config.write_text("\n".join(f"{key} = {value!r}" for key, value in body.items()) + "\n")
    monkeypatch.chdir(tmp_path)
    runner = Runner.from_cfg(Config.fromfile(str(config)))
    assert runner.work_dir == os.path.join(str(tmp_path), "work_dirs", "my_experiment")
    # The config is dumped when training starts, once the run holds the work dir's lock.
    runner.train()
    assert os.path.isfile(os.path.join(runner.work_dir, "my_experiment.py"))


def test_work_dir_required_without_config_file(tmp_path):
    cfg = _cfg(tmp_path)
    del cfg["work_dir"]
    with pytest.raises(ConfigError, match="work_dir"):
        Runner(**cfg)
