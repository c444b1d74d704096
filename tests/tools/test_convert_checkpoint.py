"""tools/convert_checkpoint.py: a checkpoint that pickles its own classes becomes a safe one."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from runner_support import loader_cfg
from torch import nn

from minirunner.checkpoint import CorruptCheckpointError, load_checkpoint_file, verify_checkpoint
from minirunner.model import BaseClassifier, MLPClassifier
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


# ------------------------------------------------------------- a real MMEngine 0.10.7 checkpoint
# Made once by MMEngine's own Runner (see tests/fixtures/mmengine_0.10.7/README.md); converting it
# must not need mmengine, nor NumPy, which this venv lacks.
FIXTURE = REPO / "tests" / "fixtures" / "mmengine_0.10.7"
MMENGINE_CHECKPOINT = FIXTURE / "epoch_2.pth"
HAS_NUMPY = importlib.util.find_spec("numpy") is not None


def _expected() -> dict:
    return json.loads((FIXTURE / "expected.json").read_text())


class TinyModel(BaseClassifier):
    """The fixture's model in minirunner: one Linear(4, 2) under the name ``linear``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    @property
    def net(self) -> nn.Module:
        return self.linear


def _check_converted(out: Path) -> dict:
    """What must hold with or without NumPy; returns the converted checkpoint."""
    expected = _expected()
    converted = load_checkpoint_file(str(out))  # weights_only=True, after the CRC check
    assert set(expected["state_dict"]) == set(converted["state_dict"])
    for key, values in expected["state_dict"].items():
        assert torch.equal(converted["state_dict"][key], torch.tensor(values, dtype=torch.float32))
    state = converted["optimizer"]["state"]
    for index, values in expected["momentum_buffer"].items():
        assert torch.equal(state[int(index)]["momentum_buffer"], torch.tensor(values, dtype=torch.float32))
    for group, saved in zip(converted["optimizer"]["param_groups"], expected["param_groups"], strict=True):
        assert {key: group[key] for key in saved} == saved
    (scheduler,) = converted["param_schedulers"]
    (saved,) = expected["param_schedulers"]
    assert sorted(scheduler["milestones"].items()) == [tuple(pair) for pair in saved["milestones"]]
    assert (scheduler["gamma"], scheduler["last_step"]) == (saved["gamma"], saved["last_step"])
    for key, value in expected["meta"].items():
        assert converted["meta"][key] == value
    # The ConfigDict in meta becomes a plain dict.
    assert expected["dataset_meta"]["type"] == "ConfigDict"
    assert type(converted["meta"]["dataset_meta"]) is dict
    dataset_meta = {key: tuple(value) for key, value in expected["dataset_meta"]["value"].items()}
    assert converted["meta"]["dataset_meta"] == dataset_meta
    return converted


def test_mmengine_checkpoint_converts_without_mmengine(tmp_path, capsys):
    out = tmp_path / "converted.pth"
    assert _tool().main([str(MMENGINE_CHECKPOINT), str(out), "--trust-source"]) == 0
    captured = capsys.readouterr()
    assert "mmengine" not in sys.modules  # its classes have stand-ins, even where it is installed
    converted = _check_converted(out)
    if HAS_NUMPY:
        assert "NumPy" not in captured.out + captured.err
        assert sorted(converted["message_hub"]["log_scalars"]) == _expected()["log_scalars"]
    else:
        # The message hub's history arrays and its eta scalar need NumPy: left out, and said so.
        assert "message_hub" not in converted
        assert "message_hub (all of it" in captured.out
        for name in _expected()["log_scalars"]:
            reason = "a HistoryBuffer: a NumPy array; NumPy is not installed"
            assert f"message_hub.log_scalars.{name} ({reason}" in captured.out
        assert "message_hub.runtime_info.eta (a NumPy scalar" in captured.out
        assert "warning: NumPy is not installed" in captured.err
        assert "Traceback" not in captured.err


@pytest.mark.slow
def test_mmengine_checkpoint_converts_in_a_subprocess(tmp_path):
    out = tmp_path / "converted.pth"
    result = subprocess.run(
        [sys.executable, "tools/convert_checkpoint.py", str(MMENGINE_CHECKPOINT), str(out), "--trust-source"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: loads with weights_only=True" in result.stdout
    assert ("warning: NumPy is not installed" in result.stderr) is not HAS_NUMPY
    _check_converted(out)


def test_mmengine_checkpoint_history_becomes_minirunner_history(tmp_path):
    pytest.importorskip("numpy")
    from minirunner.logging import MessageHub

    out = tmp_path / "converted.pth"
    assert _tool().main([str(MMENGINE_CHECKPOINT), str(out), "--trust-source"]) == 0
    hub = MessageHub.get_instance("converted_mmengine_hub")
    hub.load_state_dict(load_checkpoint_file(str(out))["message_hub"])
    assert len(hub.get_scalar("train/lr").data[0]) == _expected()["meta"]["iter"]


def test_mmengine_checkpoint_without_trust_source_is_refused(tmp_path, capsys):
    out = tmp_path / "converted.pth"
    assert _tool().main([str(MMENGINE_CHECKPOINT), str(out)]) == 2
    error = capsys.readouterr().err
    assert "mmengine.config.config.ConfigDict" in error and "nothing was loaded" in error
    assert "--trust-source" in error
    assert not out.exists()


def test_converted_mmengine_checkpoint_is_a_load_from(tmp_path):
    out = tmp_path / "converted.pth"
    assert _tool().main([str(MMENGINE_CHECKPOINT), str(out), "--trust-source"]) == 0
    runner = Runner(
        model=TinyModel(), work_dir=str(tmp_path / "work"), load_from=str(out),
        train_dataloader=loader_cfg(num_samples=4, batch_size=4),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.0)),  # lr 0: the weights stay the loaded ones
        default_hooks=dict(checkpoint=None),
    )
    model = runner.train()
    for key, values in _expected()["state_dict"].items():
        assert torch.equal(model.state_dict()[key], torch.tensor(values, dtype=torch.float32))


# Found by flipping, one at a time, each bit of the fixture's last 3,000 bytes (see its README):
# (position from the end, bit, what catches it, whether the weights_only load already fails).
DAMAGED = [
    (-1430, 6, "crc", True),  # a byte of a tensor: its record fails its CRC-32
    (-741, 0, "crc", True),  # the central directory's first signature: zipfile cannot read it
    (-733, 0, "torch", True),  # data.pkl's flags say "encrypted": every CRC matches, torch.load fails
    (-420, 3, "torch", False),  # a tensor record's name: found missing only when the full unpickle needs it
]


@pytest.mark.parametrize(("position", "bit", "caught_by", "safe_load_fails"), DAMAGED)
@pytest.mark.parametrize("trust", [True, False], ids=["trust-source", "untrusted"])
def test_damaged_checkpoint_is_one_line_error(tmp_path, capsys, position, bit, caught_by, safe_load_fails, trust):
    damaged, out = tmp_path / "damaged.pth", tmp_path / "converted.pth"
    data = bytearray(MMENGINE_CHECKPOINT.read_bytes())
    data[position] ^= 1 << bit
    damaged.write_bytes(bytes(data))
    # The variant is the kind of damage it stands for.
    if caught_by == "crc":
        with pytest.raises(CorruptCheckpointError):
            verify_checkpoint(str(damaged))
    else:
        assert verify_checkpoint(str(damaged))

    assert _tool().main([str(damaged), str(out)] + (["--trust-source"] if trust else [])) == 2
    captured = capsys.readouterr()
    assert not out.exists() and not list(tmp_path.glob("converted*"))
    assert "Traceback" not in captured.err and captured.out == ""
    if trust or safe_load_fails:
        assert captured.err.startswith(f"error: {damaged} is ") and "damaged" in captured.err
        assert captured.err.count("\n") == 1
    else:  # nothing was unpickled, so nothing found the damage: the refusal
        assert "--trust-source" in captured.err and "nothing was loaded" in captured.err
