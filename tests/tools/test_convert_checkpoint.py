"""tools/convert_checkpoint.py: a checkpoint that pickles its own classes becomes a safe one."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from minirunner.model import MLPClassifier
from minirunner.runner import Runner

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("convert_checkpoint_tool", REPO / "tools" / "convert_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HistoryBuffer:
    """Stands for the reference engine's own classes: pickled by reference to their module."""

    def __init__(self, values) -> None:
        self.values = list(values)


class ConfigDict(dict):
    """A dict subclass of the reference engine."""


def _reference_checkpoint(path: Path) -> dict:
    """Write a checkpoint shaped like the reference engine's, whose classes live in a module
    that does not exist when it is converted (as when the reference is not installed)."""
    fake = types.ModuleType("refengine_fake")
    fake.HistoryBuffer, fake.ConfigDict = HistoryBuffer, ConfigDict
    HistoryBuffer.__module__ = ConfigDict.__module__ = "refengine_fake"
    model = MLPClassifier(in_features=8, hidden_dims=(16,), num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(2, 8), mode="tensor").sum().backward()
    optimizer.step()
    original = {
        "meta": {"epoch": 3, "iter": 30, "seed": 1, "cfg": ConfigDict(lr=0.1), "hook_msgs": HistoryBuffer([1.0])},
        "state_dict": OrderedDict(model.state_dict()),
        "optimizer": optimizer.state_dict(),
        "message_hub": {"log_scalars": {"train/loss": HistoryBuffer([0.5, 0.4])}},
    }
    sys.modules["refengine_fake"] = fake
    try:
        torch.save(original, path)
    finally:
        del sys.modules["refengine_fake"]
    return original


def test_without_trust_source_it_refuses_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "MARKER"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    source = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": Payload()}, source)
    assert _tool().main([str(source), str(tmp_path / "out.pth")]) == 2
    error = capsys.readouterr().err
    assert "--trust-source" in error and "io.open" in error and "nothing was loaded" in error
    assert not marker.exists() and not (tmp_path / "out.pth").exists()


def test_a_reference_checkpoint_becomes_a_safe_one(tmp_path, capsys):
    source, out = tmp_path / "ref.pth", tmp_path / "safe.pth"
    original = _reference_checkpoint(source)
    with pytest.raises(Exception, match="convert_checkpoint.py"):
        Runner(
            model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3),
            work_dir=str(tmp_path / "w"), load_from=str(source),
            val_dataloader=dict(dataset=dict(type="SyntheticClassification", num_samples=4, num_features=8,
                                             num_classes=3), sampler=dict(type="DefaultSampler", shuffle=False),
                                batch_size=4),
            val_cfg=dict(), val_evaluator=dict(type="Accuracy"),
        ).val()
    assert _tool().main([str(source), str(out), "--trust-source"]) == 0
    report = capsys.readouterr().out
    # What could not be kept is named; a state that would be half kept goes whole.
    assert "meta.hook_msgs (refengine_fake.HistoryBuffer)" in report
    assert "message_hub (all of it" in report

    converted = torch.load(out, weights_only=True)
    assert set(converted) == {"meta", "state_dict", "optimizer"}
    for key, value in original["state_dict"].items():
        assert torch.equal(converted["state_dict"][key], value)
    assert converted["optimizer"]["param_groups"] == original["optimizer"]["param_groups"]
    for index, state in original["optimizer"]["state"].items():
        assert torch.equal(converted["optimizer"]["state"][index]["momentum_buffer"], state["momentum_buffer"])
    assert converted["meta"]["epoch"] == 3 and converted["meta"]["cfg"] == {"lr": 0.1}
    assert converted["meta"]["converted_from"] == str(source)

    # The converted file is what load_from needs.
    runner = Runner(model=dict(type="MLPClassifier", in_features=8, hidden_dims=(16,), num_classes=3),
                    work_dir=str(tmp_path / "w2"))
    runner.load_checkpoint(str(out), strict=True)
    for key, value in runner.model.state_dict().items():
        assert torch.equal(value, original["state_dict"][key])


def test_a_safe_checkpoint_is_copied(tmp_path, capsys):
    source, out = tmp_path / "safe.pth", tmp_path / "copy.pth"
    torch.save({"state_dict": {"w": torch.arange(3.0)}, "meta": {"epoch": 1}}, source)
    assert _tool().main([str(source), str(out)]) == 0
    assert "already a safe checkpoint" in capsys.readouterr().out
    assert torch.equal(torch.load(out, weights_only=True)["state_dict"]["w"], torch.arange(3.0))


def test_missing_input(tmp_path, capsys):
    assert _tool().main([str(tmp_path / "nope.pth"), str(tmp_path / "out.pth")]) == 2
    assert "nope.pth" in capsys.readouterr().err
