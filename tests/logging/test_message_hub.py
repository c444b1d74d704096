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
