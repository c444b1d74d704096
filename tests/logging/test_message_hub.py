"""MessageHub: scalars, runtime info, instances, and a state dict that loads with weights_only."""

from __future__ import annotations

import io

import pytest
import torch

from minirunner.logging import MessageHub


def test_scalars_and_info():
    hub = MessageHub("hub_test_scalars")
    hub.update_scalar("train/loss", 1.0)
    hub.update_scalar("train/loss", 3.0)
    hub.update_scalars({"train/lr": 0.1, "val/acc": dict(value=9.0, count=3)})
    assert hub.get_scalar("train/loss").mean() == pytest.approx(2.0)
    assert hub.get_scalar("train/loss").current() == 3.0
    assert hub.get_scalar("val/acc").mean() == pytest.approx(3.0)  # 9 over a count of 3
    assert set(hub.log_scalars) == {"train/loss", "train/lr", "val/acc"}
    hub.update_info("epoch", 2)
    hub.update_info_dict({"iter": 7, "cfg": "x = 1"})
    assert hub.get_info("epoch") == 2 and hub.get_info("iter") == 7
    assert hub.get_info("missing") is None and hub.get_info("missing", 5) == 5
    assert hub.runtime_info == {"epoch": 2, "iter": 7, "cfg": "x = 1"}


def test_missing_scalar_lists_what_exists():
    hub = MessageHub("hub_test_missing")
    hub.update_scalar("train/loss", 1.0)
    with pytest.raises(KeyError, match=r"no scalar 'train/los'.*train/loss"):
        hub.get_scalar("train/los")


def test_current_instance_and_named_instances():
    hub = MessageHub("hub_test_current")
    hub.make_current()
    assert MessageHub.get_current_instance() is hub
    assert MessageHub.get_instance("hub_test_current") is hub
    other = MessageHub.get_instance("hub_test_other_name")
    assert other is not hub and other.name == "hub_test_other_name"
    assert MessageHub.get_current_instance() is other  # get_instance makes it current


def test_runner_hub_is_current(tmp_path):
    from minirunner.runner import Runner

    runner = Runner(model=dict(type="MLPClassifier", in_features=4, hidden_dims=(4,), num_classes=2),
                    work_dir=str(tmp_path), experiment_name="hub_test_runner")
    assert MessageHub.get_current_instance() is runner.message_hub
    assert runner.message_hub.name == "hub_test_runner"


def test_state_dict_loads_with_weights_only():
    hub = MessageHub("hub_test_state")
    for value in (0.5, torch.tensor(0.25), torch.tensor(0.125, requires_grad=True) * 1):
        hub.update_scalar("train/loss", value)
    hub.update_scalar("train/lr", 0.1)
    hub.update_info_dict({"epoch": 3, "name": "run", "shape": [1, (2, 3)], "meta": {"a": None}})
    hub.update_info("model", torch.nn.Linear(1, 1))  # not plain: left out
    hub.update_info("tensor", torch.ones(2))  # not plain: left out
    buffer = io.BytesIO()
    torch.save(hub.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["log_scalars"]["train/loss"]["values"] == [0.5, 0.25, 0.125]
    assert state["runtime_info"] == {"epoch": 3, "name": "run", "shape": [1, (2, 3)], "meta": {"a": None}}
    restored = MessageHub("hub_test_restored")
    restored.load_state_dict(state)
    assert restored.get_scalar("train/loss").mean(2) == pytest.approx(0.1875)
    assert restored.get_scalar("train/lr").current() == 0.1
    assert restored.get_info("epoch") == 3


def test_keys_updated_with_resumed_false_are_not_saved():
    hub = MessageHub("hub_test_resumed")
    hub.update_scalar("train/loss", 1.0)
    hub.update_scalar("train/time", 0.1, resumed=False)
    hub.update_scalars({"train/data_time": 0.01}, resumed=False)
    hub.update_info("epoch", 1)
    hub.update_info("eta", 12.0, resumed=False)
    state = hub.state_dict()
    assert set(state["log_scalars"]) == {"train/loss"}
    assert state["runtime_info"] == {"epoch": 1}
    assert state["resumed_keys"] == {
        "train/loss": True, "epoch": True, "train/time": False, "train/data_time": False, "eta": False,
    }


def test_state_dict_has_the_references_top_level_keys():
    hub = MessageHub("hub_test_keys")
    hub.update_scalar("train/loss", 1.0)
    state = hub.state_dict()
    assert set(state) == {"log_scalars", "runtime_info", "resumed_keys"}
    assert isinstance(state["log_scalars"]["train/loss"], dict)  # lists inside, not an object


def test_instances_follow_manager_mixin():
    first = MessageHub.get_instance("hub_test_mm_a")
    assert first.instance_name == "hub_test_mm_a"
    second = MessageHub.get_instance("hub_test_mm_b")
    assert MessageHub.get_current_instance() is second
    assert MessageHub.get_instance("hub_test_mm_a") is first
    assert MessageHub.get_current_instance() is first


def test_current_instance_is_made_when_there_is_none(monkeypatch):
    from collections import OrderedDict

    monkeypatch.setattr(MessageHub, "_instance_dict", OrderedDict())
    hub = MessageHub.get_current_instance()
    assert isinstance(hub, MessageHub) and hub.instance_name == "minirunner"
    assert MessageHub.get_current_instance() is hub


def test_make_current_replaces_an_older_hub_of_the_same_name():
    old = MessageHub.get_instance("hub_test_replaced")
    new = MessageHub("hub_test_replaced")  # what a new Runner with the same experiment name does
    assert MessageHub.get_instance("hub_test_replaced") is old  # built directly: not registered yet
    new.make_current()
    assert MessageHub.get_current_instance() is new
    assert MessageHub.get_instance("hub_test_replaced") is new


def test_constructor_takes_initial_contents():
    from minirunner.logging import HistoryBuffer

    hub = MessageHub(
        "hub_test_init",
        log_scalars={"loss": HistoryBuffer([2.0, 4.0], [1, 1])},
        runtime_info={"task": "cls"},
        resumed_keys={"loss": False},
    )
    assert hub.get_scalar("loss").mean() == 3.0 and hub.get_info("task") == "cls"
    assert hub.resumed_keys == {"loss": False, "task": True}
    assert "loss" not in hub.state_dict()["log_scalars"]
    with pytest.raises(AssertionError, match="'nope'"):
        MessageHub("hub_test_init_bad", resumed_keys={"nope": True})
    with pytest.raises(AssertionError, match="must be a HistoryBuffer"):
        MessageHub("hub_test_init_bad", log_scalars={"loss": [1.0]})
    with pytest.raises(TypeError, match="runtime_info must be a dict"):
        MessageHub("hub_test_init_bad", runtime_info=[("a", 1)])


def test_pop_info_and_live_views():
    hub = MessageHub("hub_test_pop")
    hub.update_info("best", 0.9)
    assert hub.pop_info("best") == 0.9
    assert hub.pop_info("best") is None and hub.pop_info("best", "gone") == "gone"
    assert hub.get_info("best") is None
    hub.runtime_info["direct"] = 1  # the hub's own dict, as in the reference engine
    assert hub.get_info("direct") == 1
    hub.update_scalar("x", 1.0)
    assert hub.log_scalars["x"] is hub.get_scalar("x")


def test_a_saved_key_cannot_become_unsaved():
    hub = MessageHub("hub_test_conflict")
    hub.update_scalar("train/loss", 1.0)
    hub.update_info("epoch", 1)
    with pytest.raises(AssertionError, match="'train/loss' was first updated with resumed=True"):
        hub.update_scalar("train/loss", 2.0, resumed=False)
    with pytest.raises(AssertionError, match="'epoch'"):
        hub.update_info("epoch", 2, resumed=False)
    with pytest.raises(AssertionError, match="'epoch'"):
        hub.update_info_dict({"epoch": 2}, resumed=False)
    # Keys first given resumed=False keep it; repeating it is fine.
    hub.update_scalar("train/time", 0.1, resumed=False)
    hub.update_scalar("train/time", 0.2, resumed=False)
    hub.update_scalar("train/time", 0.3)
    assert "train/time" not in hub.state_dict()["log_scalars"]


def test_update_scalars_needs_a_value_in_dict_items():
    hub = MessageHub("hub_test_scalars_dict")
    with pytest.raises(AssertionError, match="'acc' is a dict without 'value'"):
        hub.update_scalars({"acc": dict(count=2)})
    with pytest.raises(TypeError, match="log_dict must be a dict"):
        hub.update_scalars([("acc", 1.0)])


def test_load_state_dict_formats():
    from minirunner.logging import HistoryBuffer

    # The format written before resumed_keys existed.
    previous = {"log_scalars": {"train/loss": {"values": [1.0, 3.0], "counts": [1, 1], "max_length": 10}},
                "runtime_info": {"epoch": 2}}
    hub = MessageHub("hub_test_load_previous")
    hub.load_state_dict(previous)
    assert hub.get_scalar("train/loss").mean() == 2.0 and hub.get_info("epoch") == 2
    assert hub.resumed_keys == {"train/loss": True, "epoch": True}
    # Histories as objects, and resumed_keys with False, as the reference's state dict holds.
    hub = MessageHub("hub_test_load_objects")
    hub.update_scalar("val/acc", 50.0)  # already there: kept, as the reference engine keeps it
    hub.load_state_dict({
        "log_scalars": {"train/loss": HistoryBuffer([4.0], [1])},
        "runtime_info": {"iter": 7, "eta": 3.0},
        "resumed_keys": {"train/loss": True, "iter": True, "eta": False},
    })
    assert hub.get_scalar("train/loss").current() == 4.0 and hub.get_scalar("val/acc").current() == 50.0
    assert hub.get_info("iter") == 7
    assert "eta" not in hub.state_dict()["runtime_info"]
    # Another hub.
    copy_hub = MessageHub("hub_test_load_hub")
    copy_hub.load_state_dict(hub)
    assert copy_hub.get_scalar("val/acc").current() == 50.0
    assert copy_hub.get_scalar("val/acc") is not hub.get_scalar("val/acc")
    assert copy_hub.resumed_keys["eta"] is False


def test_load_state_dict_skips_what_is_not_a_history(capsys):
    hub = MessageHub("hub_test_load_skip")
    hub.load_state_dict({"log_scalars": {"bad": 3.0}, "runtime_info": {}, "resumed_keys": {}})
    assert "bad" not in hub.log_scalars
    assert "log_scalars['bad'] is not a history" in capsys.readouterr().out


def test_state_dict_round_trip_through_a_file_is_exact(tmp_path):
    hub = MessageHub("hub_test_exact")
    for step in range(50):
        hub.update_scalar("train/loss", torch.tensor(1.0 / (step + 3), dtype=torch.float64))
        hub.update_scalar("train/lr", 0.1 * 0.9 ** step)
    path = tmp_path / "hub.pth"
    torch.save(hub.state_dict(), path)
    restored = MessageHub("hub_test_exact_restored")
    restored.load_state_dict(torch.load(path, weights_only=True))
    for key in ("train/loss", "train/lr"):
        assert restored.get_scalar(key).data == hub.get_scalar(key).data
    assert restored.state_dict() == hub.state_dict()
