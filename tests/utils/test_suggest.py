"""Suggestions for misspelled names, and ConfigError's message and key path."""

from __future__ import annotations

import pytest

from minirunner.utils import ConfigError, closest_matches, did_you_mean, quoted_list

OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adamax", "RMSprop", "Adagrad", "ASGD", "LBFGS"]


def test_case_insensitive_match_comes_first():
    assert closest_matches("sgd", OPTIMIZERS)[0] == "SGD"
    assert closest_matches("adamw", OPTIMIZERS)[0] == "AdamW"
    assert closest_matches("ADAM", OPTIMIZERS)[0] == "Adam"


def test_typo_finds_the_name():
    assert closest_matches("SDG", OPTIMIZERS)[0] in ("SGD", "ASGD")
    assert "SGD" in closest_matches("SDG", OPTIMIZERS)
    assert "Adam" in closest_matches("Adma", OPTIMIZERS)
    assert closest_matches("momentun", ["lr", "momentum", "dampening", "nesterov"]) == ["momentum"]


def test_case_and_typo_together():
    # difflib alone is case-sensitive; the lower-cased pass still finds these.
    assert "RMSprop" in closest_matches("rmsprob", OPTIMIZERS)
    assert "LBFGS" in closest_matches("lbfgz", OPTIMIZERS)


def test_nothing_close():
    assert closest_matches("Transformer", OPTIMIZERS) == []
    assert closest_matches("x", []) == []
    assert did_you_mean("Transformer", OPTIMIZERS) == ""


def test_at_most_n_results_without_duplicates():
    names = ["abc1", "abc2", "abc3", "abc4", "ABC"]
    found = closest_matches("abc", names)
    assert len(found) == 3
    assert found[0] == "ABC"
    assert len(set(found)) == len(found)
    assert closest_matches("abc", names, n=1) == ["ABC"]
    assert len(closest_matches("abc", names, n=5)) == 5


def test_did_you_mean_text():
    assert did_you_mean("sgd", ["SGD", "Linear"]) == " Did you mean 'SGD'?"
    assert did_you_mean("lrr", ["lr"]) == " Did you mean 'lr'?"
    assert did_you_mean("ab", ["abc", "abd"]) in (" Did you mean 'abc' or 'abd'?", " Did you mean 'abd' or 'abc'?")


def test_quoted_list():
    assert quoted_list(["b", "a"]) == "'a', 'b'"
    assert quoted_list([]) == ""
    assert quoted_list([f"n{i:02d}" for i in range(5)], limit=3) == "'n00', 'n01', 'n02', ... (2 more)"


def test_config_error_message_and_key_path():
    error = ConfigError("'SDG' is not registered", key="type")
    assert isinstance(error, ValueError)
    assert str(error) == "type: 'SDG' is not registered"
    assert error.problem == "'SDG' is not registered"
    assert error.under("optimizer") is error
    error.under("optim_wrapper")
    assert error.key == "optim_wrapper.optimizer.type"
    assert str(error) == "optim_wrapper.optimizer.type: 'SDG' is not registered"
    assert error.args == (str(error),)


def test_config_error_without_key():
    error = ConfigError("config file not found")
    assert str(error) == "config file not found"
    assert error.key is None
    assert str(error.under("model")) == "model: config file not found"
    with pytest.raises(ValueError, match="^model: config file not found$"):
        raise error
