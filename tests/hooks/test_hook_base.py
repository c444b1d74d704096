"""Hook: get_triggered_stages (the reference's rule and stage names), and super() calls
from every event of a subclass, with the runner dispatching only to implemented events."""

from __future__ import annotations

import inspect

import pytest

from minirunner.hooks import EVENTS, Hook

# The reference's Hook.stages, in its order.
REFERENCE_STAGES = (
    "before_run", "after_load_checkpoint", "before_train", "before_train_epoch",
    "before_train_iter", "after_train_iter", "after_train_epoch", "before_val",
    "before_val_epoch", "before_val_iter", "after_val_iter", "after_val_epoch", "after_val",
    "before_save_checkpoint", "after_train", "before_test", "before_test_epoch",
    "before_test_iter", "after_test_iter", "after_test_epoch", "after_test", "after_run",
)


def test_stages_are_the_reference_events_in_order():
    assert Hook.stages == REFERENCE_STAGES
    assert tuple(EVENTS) == REFERENCE_STAGES


def test_a_plain_hook_triggers_nothing():
    assert Hook().get_triggered_stages() == []


def test_overridden_events_in_stage_order():
    class H(Hook):
        def after_run(self, runner):
            pass

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            pass

        def after_val_epoch(self, runner, metrics=None):
            pass

    assert H().get_triggered_stages() == ["before_train_iter", "after_val_epoch", "after_run"]


@pytest.mark.parametrize(
    "helper, events",
    [
        ("_before_epoch", ["before_train_epoch", "before_val_epoch", "before_test_epoch"]),
        ("_after_epoch", ["after_train_epoch", "after_val_epoch", "after_test_epoch"]),
        ("_before_iter", ["before_train_iter", "before_val_iter", "before_test_iter"]),
        ("_after_iter", ["after_train_iter", "after_val_iter", "after_test_iter"]),
    ],
)
def test_a_generic_helper_stands_for_the_event_of_every_mode(helper, events):
    H = type("H", (Hook,), {helper: lambda self, runner, *args, **kwargs: None})
    assert H().get_triggered_stages() == events


def test_helper_and_event_overrides_combine_without_duplicates():
    class H(Hook):
        def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
            pass

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            pass

        def before_run(self, runner):
            pass

    assert H().get_triggered_stages() == ["before_run", "after_train_iter", "after_val_iter", "after_test_iter"]


def test_inherited_overrides_count():
    class Base(Hook):
        def after_train_epoch(self, runner):
            pass

    class Child(Base):
        pass

    assert Child().get_triggered_stages() == ["after_train_epoch"]


def _call_args(event: str) -> dict:
    """Keyword arguments the runner passes with ``event`` (besides the runner)."""
    params = list(inspect.signature(getattr(Hook, event)).parameters)[2:]
    values = {"batch_idx": 3, "data_batch": {"x": 1}, "outputs": {"loss": 0.5}, "metrics": {"acc": 1.0},
              "checkpoint": {}}
    return {name: values[name] for name in params}


@pytest.mark.parametrize("event", REFERENCE_STAGES)
def test_super_call_from_every_event_reaches_the_generic_helper(event):
    """A subclass that overrides an event and calls ``super().<event>(...)`` works, and the
    default implementation still forwards to the mode-independent helper."""
    seen = []

    def override(self, runner, *args, **kwargs):
        seen.append(("event", event))
        getattr(super(H, self), event)(runner, *args, **kwargs)

    def helper(name):
        def record(self, runner, *args, mode="train", **kwargs):
            seen.append((name, mode))
        return record

    helpers = {name: helper(name) for name in ("_before_epoch", "_after_epoch", "_before_iter", "_after_iter")}
    H = type("H", (Hook,), {event: override, **helpers})
    hook = H()
    runner = object()
    kwargs = _call_args(event)
    # As the runner calls it: through the handler table, keyword arguments.
    hook.event_handlers()[event](runner, **kwargs)
    # And positionally, as user code calling super() often does.
    hook.event_handlers()[event](runner, *kwargs.values())
    parts = event.split("_")
    expected = [("event", event)]
    if len(parts) == 3 and parts[2] in ("epoch", "iter"):
        expected.append((f"_{parts[0]}_{parts[2]}", parts[1]))
    assert seen == expected * 2


def test_dispatch_only_to_implemented_events():
    class H(Hook):
        def _after_iter(self, runner, batch_idx, data_batch=None, outputs=None, mode="train"):
            pass

    assert set(H().event_handlers()) == set(H().get_triggered_stages())
