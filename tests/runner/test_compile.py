"""``compile=...``: the model's forward runs compiled, names stay plain, the warm-up is left out
of ``time``, graph breaks and recompiles are reported, and bad keys are config errors.

All but one compile test (test_compile_inductor.py) use the 'eager' or 'aot_eager' backends:
they trace and run the graphs dynamo captures without inductor's code generation, in seconds.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minirunner.config import ConfigError
from minirunner.model import MLPClassifier
from minirunner.model.compile import is_compiled
from minirunner.registry import MODELS
from minirunner.runner import Runner, load_checkpoint
from runner_support import loader_cfg

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch, tmp_path):
    """Dynamo's caches and counters are per process: start each test without them, and give
    the inductor cache variables back as they were (the runner points them into its work dir)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()  # reset() leaves them: an earlier test's compiles would count here
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "not-used"))
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "not-used"))
    yield
    torch._dynamo.reset()


@MODELS.register_module(name="GraphBreakMLP")
class GraphBreakMLP(MLPClassifier):
    """An MLP whose forward dynamo cannot capture in one graph."""

    def forward(self, inputs, data_samples=None, mode="tensor"):
        inputs = inputs * 1.0
        torch._dynamo.graph_break()
        return super().forward(inputs, data_samples, mode)


def _cfg(work_dir, compile=None, model="MLPClassifier", samples=24, **extra) -> dict:
    cfg = dict(
        model=dict(type=model, in_features=4, hidden_dims=(8,), num_classes=3),
        work_dir=str(work_dir),
        train_dataloader=loader_cfg(samples, 8, num_classes=3),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(
            optimizer=dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-3),
            paramwise_cfg=dict(bias_decay_mult=0.0),
        ),
        param_scheduler=dict(type="StepLR", by_epoch=True, step_size=1, gamma=0.5),
        default_hooks=dict(logger=dict(interval=1)),
        randomness=dict(seed=0),
        **extra,
    )
    if compile is not None:
        cfg["compile"] = compile
    return cfg


def _log(work_dir) -> str:
    (path,) = glob.glob(os.path.join(str(work_dir), "*", "*.log"))
    return Path(path).read_text()


def _train_records(work_dir) -> list[dict]:
    (path,) = glob.glob(os.path.join(str(work_dir), "*", "vis_data", "scalars.json"))
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    return [r for r in records if "loss" in r]


def _frames_compiled() -> int:
    from torch._dynamo.utils import counters

    return counters["frames"]["ok"]


def test_compiled_run_matches_eager_and_keeps_plain_names(tmp_path):
    eager = Runner.from_cfg(_cfg(tmp_path / "eager"))
    eager.train()
    assert _frames_compiled() == 0 and not is_compiled(eager.model)

    runner = Runner.from_cfg(_cfg(tmp_path / "compiled", compile=dict(backend="aot_eager")))
    runner.train()
    # The forward really ran compiled (the old compile-before-wrapping compiled nothing).
    assert _frames_compiled() > 0 and is_compiled(runner.model)
    for key, value in eager.model.state_dict().items():
        torch.testing.assert_close(runner.model.state_dict()[key], value, atol=1e-5, rtol=0)

    # Names are the plain model's everywhere: the checkpoint, the log, the param groups.
    saved = torch.load(tmp_path / "compiled" / "epoch_2.pth", weights_only=True)
    plain = torch.load(tmp_path / "eager" / "epoch_2.pth", weights_only=True)
    assert list(saved["state_dict"]) == list(plain["state_dict"])
    assert saved["optimizer"]["param_groups"] == plain["optimizer"]["param_groups"]
    log = _log(tmp_path / "compiled")
    assert "_orig_mod" not in log
    assert "paramwise_options -- net.1.bias:weight_decay=0.0" in log
    assert f"caches in {tmp_path / 'compiled' / 'compile_cache'}" in log
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "compiled" / "compile_cache")

    # The first iteration compiled: it is reported once and left out of time (and eta).
    assert re.findall(r"torch\.compile: compiling took [\d.]+ s of iteration (\d+)'s", log) == ["1"]
    compiled_records, eager_records = _train_records(tmp_path / "compiled"), _train_records(tmp_path / "eager")
    assert "time" not in compiled_records[0] and all("time" in r for r in compiled_records[1:])
    assert all("time" in r for r in eager_records)
    assert "torch.compile" not in _log(tmp_path / "eager")
    assert not (tmp_path / "eager" / "compile_cache").exists()


def test_graph_breaks_and_recompiles_are_reported_after_the_first_epoch(tmp_path):
    # 10 samples in batches of 8: the last batch of 2 makes dynamo recompile (iteration 2).
    cfg = _cfg(tmp_path, compile=dict(backend="eager"), model="GraphBreakMLP", samples=10)
    Runner.from_cfg(cfg).train()
    log = _log(tmp_path)
    reports = re.findall(
        r"torch\.compile, by iteration (\d+): (\d+) frame\(s\) compiled, (\d+) graph break\(s\), (\d+) recompile\(s\)", log
    )
    assert len(reports) == 1  # once, after the first epoch of two
    iteration, frames, breaks, recompiles = map(int, reports[0])
    assert iteration == 2 and frames >= 2 and breaks >= 1 and recompiles >= 1
    assert re.search(r"graph break \(\d+x\): .*graph_break", log)
    assert re.search(r"recompile: forward: .*size mismatch", log)
    # The iterations that compiled (the first, and the short last batch) are left out of time;
    # the second epoch compiles nothing.
    assert re.findall(r"torch\.compile: compiling took [\d.]+ s of iteration (\d+)'s", log) == ["1", "2"]
    records = _train_records(tmp_path)
    assert [index for index, record in enumerate(records, 1) if "time" not in record] == [1, 2]


def test_compiled_model_with_ema_validates_tests_and_loads(tmp_path):
    cfg = _cfg(
        tmp_path / "train", compile=dict(backend="aot_eager"),
        val_dataloader=loader_cfg(16, 8, shuffle=False, num_classes=3), val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        custom_hooks=[dict(type="EMAHook", momentum=0.5)],
    )
    runner = Runner.from_cfg(cfg)
    runner.train()
    (ema_hook,) = [h for h in runner.hooks if type(h).__name__ == "EMAHook"]
    averaged = ema_hook.ema_model.module
    # The averaged copy runs its forward with its own weights, not the model's (torch leaves a
    # module's compiled call out of its copies: that call would run the original).
    inputs = torch.randn(5, 4)
    reference = MLPClassifier(in_features=4, hidden_dims=(8,), num_classes=3)
    reference.load_state_dict(averaged.state_dict())
    torch.testing.assert_close(averaged(inputs), reference(inputs))
    assert not torch.allclose(averaged(inputs), runner.model(inputs))

    # load_from + test with a compiled model, as tools/test.py runs it.
    config = tmp_path / "cfg.py"
    test_cfg = dict(cfg, test_dataloader=cfg["val_dataloader"], test_cfg=dict(), test_evaluator=cfg["val_evaluator"])
    config.write_text("".join(f"{key} = {value!r}\n" for key, value in test_cfg.items()))
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "test.py"), str(config), str(tmp_path / "train" / "epoch_2.pth"),
         "--work-dir", str(tmp_path / "test")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    log = _log(tmp_path / "test")
    assert "every key matched" in log and "torch.compile: the model's forward compiles" in log
    assert re.search(r"Epoch\(test\) .*accuracy/top1: [\d.]+", log)


def test_files_written_by_a_torch_compile_wrapper_load_without_orig_mod(tmp_path):
    source = MLPClassifier(in_features=4, hidden_dims=(8,), num_classes=3)
    path = tmp_path / "other_tool.pth"
    # What other tools write: the state of torch.compile(model), and of compile(DDP(model)).
    torch.save({"state_dict": torch.compile(source).state_dict()}, path)
    ddp_style = {f"_orig_mod.module.{key}": value for key, value in source.state_dict().items()}
    torch.save({"state_dict": ddp_style}, tmp_path / "ddp_style.pth")
    assert all(key.startswith("_orig_mod.") for key in torch.load(path)["state_dict"])

    runner = Runner.from_cfg(_cfg(tmp_path / "work", compile=dict(backend="eager"), load_from=str(path)))
    runner.load_checkpoint(str(path))
    assert "every key matched" in _log(tmp_path / "work")
    for target in (runner.model, MLPClassifier(in_features=4, hidden_dims=(8,), num_classes=3)):
        load_checkpoint(target, str(tmp_path / "ddp_style.pth"), strict=True)
        for key, value in source.state_dict().items():
            assert torch.equal(target.state_dict()[key], value)


@pytest.mark.parametrize(
    ("value", "key", "hint"),
    [
        (dict(mod="default"), "compile.mod", "Did you mean 'mode'"),
        (dict(backend="inductr"), "compile.backend", "Did you mean 'inductor'"),
        (dict(mode="fastest"), "compile.mode", "'max-autotune'"),
        (dict(mode="default", options={}), "compile.options", "mode or options"),
        (dict(dynamic="yes"), "compile.dynamic", "True, False or None"),
        (dict(fullgraph=1), "compile.fullgraph", "True or False"),
        ("yes", "compile", "dict of torch.compile arguments"),
    ],
)
def test_bad_compile_values_are_config_errors(tmp_path, value, key, hint):
    with pytest.raises(ConfigError) as caught:
        Runner.from_cfg(_cfg(tmp_path, compile=value))
    assert caught.value.key == key and hint in str(caught.value)
    assert not (tmp_path / "compile_cache").exists()


@pytest.mark.parametrize("value", [False, None])
def test_compile_off_leaves_the_model_and_the_timer_untouched(tmp_path, value):
    runner = Runner.from_cfg(_cfg(tmp_path, compile=value))
    assert not is_compiled(runner.model) and runner.model._compiled_call_impl is None
    timer = runner.get_hook("timer")
    timer.before_train(runner)
    assert timer._compile_watch is None  # so the timer's iterations check nothing else
