"""Non-finite losses in a run (optim_wrapper.nonfinite): the default stops at the first bad
iteration and saves no checkpoint after it; 'skip' drops a bad window's step, as if the run had
never seen that window; 'off' trains on.

The model and run config here are also used by test_nonfinite_two_processes.py.
"""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from minirunner.dataset import SyntheticClassification
from minirunner.model import BaseModel

BATCH = 4


class NaNAt(BaseModel):
    """A linear classifier with two loss terms; ``loss_cls`` is NaN on the training forwards
    numbered in ``nan_at`` (counted from 1 in this process)."""

    def __init__(self, nan_at=(), data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)
        self.nan_at = set(nan_at)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode="tensor"):
        logits = self.fc(inputs)
        if mode == "loss":
            self.calls += 1
            loss_cls = F.cross_entropy(logits, data_samples)
            if self.calls in self.nan_at:
                loss_cls = loss_cls * float("nan")
            return dict(loss_cls=loss_cls, loss_aux=0.01 * logits.pow(2).mean())
        if mode == "predict":
            return [dict(pred_label=s.argmax(), pred_score=s, gt_label=t) for s, t in zip(logits.softmax(-1), data_samples)]
        return logits


class Rows(Dataset):
    """The first ``num_samples`` samples of one synthetic dataset, without the batches
    numbered (from 1, in order) in ``drop_batches``: a run that never saw them."""

    def __init__(self, num_samples: int, drop_batches=()) -> None:
        data = SyntheticClassification(num_samples=num_samples, num_features=4, num_classes=3, seed=1)
        dropped = {index for batch in drop_batches for index in range((batch - 1) * BATCH, batch * BATCH)}
        self.items = [data[index] for index in range(num_samples) if index not in dropped]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def run_cfg(work_dir, num_samples: int, nan_at=(), drop_batches=(), nonfinite=None, **overrides) -> dict:
    """One epoch over ``num_samples`` samples (in order, batches of 4), SGD with momentum and
    a linear warm-up by iteration that ends at iteration 10 whatever the run's length."""
    optim_wrapper = dict(optimizer=dict(type="SGD", lr=0.1, momentum=0.9))
    if nonfinite is not None:
        optim_wrapper["nonfinite"] = nonfinite
    cfg = dict(
        model=dict(type=NaNAt, nan_at=nan_at),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type=Rows, num_samples=num_samples, drop_batches=drop_batches),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=BATCH,
        ),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=optim_wrapper,
        param_scheduler=dict(type="LinearLR", by_epoch=False, start_factor=0.1, begin=0, end=10),
        default_hooks=dict(logger=dict(interval=2), checkpoint=None, progress=None),
        randomness=dict(seed=0),
    )
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


from minirunner.hooks import Hook  # noqa: E402
from minirunner.optim.nonfinite import NonFiniteLossError  # noqa: E402
from minirunner.runner import Runner  # noqa: E402
from minirunner.utils import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


class Record(Hook):
    """The learning rate each iteration ran with, and whether the weights are finite after it."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()["lr"][0])


def _weights(runner) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


# ---------------------------------------------------------------------- the default: 'raise'
def test_default_stops_naming_the_first_bad_iteration_at_the_next_log_line(tmp_path):
    # 2 epochs of 6 iterations; NaN at iteration 8 (epoch 2, batch 2), logged every 4 batches,
    # so found at iteration 10 (batch 4). A checkpoint every epoch: epoch_1 only.
    cfg = run_cfg(tmp_path, 24, nan_at={8}, train_cfg=dict(max_epochs=2),
                  default_hooks=dict(logger=dict(interval=4), checkpoint=dict(interval=1)))
    runner = Runner(**cfg)
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert message.startswith("non-finite loss at iteration 8 (epoch 2, batch 2 of 6): loss=nan, loss_cls=nan;")
    assert "loss_aux" not in message and "\n" not in message
    assert info.value.iteration == 8 and set(info.value.terms) == {"loss", "loss_cls"}
    assert runner.iter == 9  # stopped in iteration 10 (0-based 9), at its log line
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["epoch_1.pth"]


def test_default_saves_no_checkpoint_after_a_bad_iteration(tmp_path):
    # No log line before the save at iteration 9: the check before the save stops the run.
    cfg = run_cfg(tmp_path, 48, nan_at={8},
                  default_hooks=dict(logger=None, checkpoint=dict(by_epoch=False, interval=3)))
    runner = Runner(**cfg)
    with pytest.raises(NonFiniteLossError, match=r"^non-finite loss at iteration 8 \(epoch 1, batch 8 of 12\)"):
        runner.train()
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["iter_3.pth", "iter_6.pth"]
    assert (tmp_path / "last_checkpoint").read_text().endswith("iter_6.pth")


def test_off_trains_on(tmp_path):
    runner = Runner(**run_cfg(tmp_path, 24, nan_at={2}, nonfinite=dict(action="off")))
    runner.train()
    assert runner.iter == 6 and torch.isnan(runner.model.fc.weight).all()


def test_bad_settings_are_config_errors_naming_the_key(tmp_path):
    for nonfinite, key in ((dict(action="skp"), "optim_wrapper.nonfinite.action"),
                           (dict(action="skip", max_consecutive=-1), "optim_wrapper.nonfinite.max_consecutive"),
                           (dict(max_consecutiv=3), "optim_wrapper.nonfinite.max_consecutiv")):
        runner = Runner(**run_cfg(tmp_path, 8, nonfinite=nonfinite))
        with pytest.raises(ConfigError) as info:
            runner.train()
        assert str(info.value).startswith(f"{key}: "), str(info.value)


# ---------------------------------------------------------------------- 'skip'
@pytest.mark.parametrize("accumulate", [1, 2])
def test_skip_equals_a_run_that_never_saw_the_window(tmp_path, accumulate):
    # Iteration 5 is NaN; its window is batch 5 (or 5-6 with accumulation). The other run
    # never sees those batches; the LinearLR warm-up (by iteration) and EMA (without
    # accumulation) hold over the skipped window, so both end with the same weights.
    window = [5] if accumulate == 1 else [5, 6]
    hooks = [dict(type="EMAHook", momentum=0.2)] if accumulate == 1 else []
    skip = dict(action="skip")
    records = Record(), Record()
    skipped = Runner(**run_cfg(tmp_path / "a", 32, nan_at={5}, nonfinite=skip, custom_hooks=[*hooks, records[0]],
                               optim_wrapper=dict(accumulative_counts=accumulate)))
    skipped.train()
    never = Runner(**run_cfg(tmp_path / "b", 32, drop_batches=window, custom_hooks=[*hooks, records[1]],
                             optim_wrapper=dict(accumulative_counts=accumulate)))
    never.train()
    assert skipped.iter == 8 and never.iter == 8 - len(window)  # runner.iter counts the skipped ones
    assert skipped.optim_wrapper.nonfinite.skipped == 1
    assert skipped.optim_wrapper.inner_count == 8
    for name, value in _weights(never).items():
        assert torch.allclose(_weights(skipped)[name], value, rtol=0, atol=1e-7), name
    if hooks:
        ema = [next(h for h in r.hooks if type(h).__name__ == "EMAHook").ema_model for r in (skipped, never)]
        assert ema[0].steps == ema[1].steps
        for a, b in zip(ema[0].parameters(), ema[1].parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-7)
    # The optimizer steps that were taken used the same learning rates in both runs.
    def step_lrs(lrs, skipped_window=()):
        return [lr for it, lr in enumerate(lrs, start=1) if it % accumulate == 0 and it not in skipped_window]

    assert step_lrs(records[0].lrs, window) == pytest.approx(step_lrs(records[1].lrs), rel=1e-12)


def test_skip_raises_after_max_consecutive_skips(tmp_path, caplog):
    runner = Runner(**run_cfg(tmp_path, 32, nan_at={3, 4, 5}, nonfinite=dict(action="skip", max_consecutive=2)))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    assert info.value.iteration == 5
    assert "3 optimizer steps in a row were not finite, more than optim_wrapper.nonfinite.max_consecutive=2" in str(info.value)
    assert runner.optim_wrapper.nonfinite.skipped == 3


def test_skip_counts_skips_in_the_log(tmp_path):
    runner = Runner(**run_cfg(tmp_path, 32, nan_at={2, 6}, nonfinite=dict(action="skip")))
    runner.train()
    log = next(tmp_path.glob("*/*.log")).read_text()
    assert re.search(r"WARNING - nonfinite: loss nan at iteration 2; skipped the optimizer step .*\(1 skipped so far, 1 in a row\)", log)
    assert re.search(r"nonfinite: loss nan at iteration 6; .*\(2 skipped so far, 1 in a row\)", log)
    assert torch.isfinite(runner.model.fc.weight).all()


def test_skip_with_clipping_also_checks_the_gradient_norm(tmp_path):
    # A finite loss whose gradient is NaN (sqrt at 0): only the clipped norm shows it.
    class SqrtAtZero(NaNAt):
        def forward(self, inputs, data_samples=None, mode="tensor"):
            out = super().forward(inputs, data_samples, mode)
            if mode == "loss" and self.calls == 3:
                out["loss_aux"] = out["loss_aux"] + torch.sqrt(self.fc.weight.sum() * 0)
            return out

    cfg = run_cfg(tmp_path, 16, nonfinite=dict(action="skip"),
                  optim_wrapper=dict(clip_grad=dict(max_norm=10.0)))
    cfg["model"] = dict(type=SqrtAtZero)
    runner = Runner(**cfg)
    runner.train()
    assert runner.optim_wrapper.nonfinite.skipped == 1
    assert torch.isfinite(runner.model.fc.weight).all()


# ---------------------------------------------------------------------- tools/train.py
def _load_train_tool():
    spec = importlib.util.spec_from_file_location("minirunner_tool_train_nonfinite", REPO / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_tool_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "nan_model.py").write_text(textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_nonfinite import NaNAt, Rows
        from minirunner.registry import DATASETS, MODELS
        MODELS.register_module(name='NaNAtForCli', module=NaNAt, force=True)
        DATASETS.register_module(name='RowsForCli', module=Rows, force=True)
        """))
    (tmp_path / "nan.py").write_text(textwrap.dedent(
        """
        custom_imports = dict(imports=['nan_model'])
        model = dict(type='NaNAtForCli', nan_at=[3])
        train_dataloader = dict(dataset=dict(type='RowsForCli', num_samples=24),
                                sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4)
        train_cfg = dict(by_epoch=True, max_epochs=1)
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
        default_hooks = dict(logger=dict(interval=2), progress=None)
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    work = tmp_path / "work"
    assert _load_train_tool().main([str(tmp_path / "nan.py"), "--work-dir", str(work)]) == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if " - ERROR - " in line]
    assert len(errors) == 1 and "non-finite loss at iteration 3 (epoch 1, batch 3 of 6): loss=nan, loss_cls=nan" in errors[0]
    assert not list(work.glob("*.pth"))
    log = next(work.glob("*/*.log")).read_text()
    assert "Traceback" in log and "NonFiniteLossError" in log


def test_a_resumed_run_checks_only_its_own_iterations(tmp_path):
    # The first run skipped a NaN (its history in the checkpoint's message hub holds it); the
    # resumed run, with the default 'raise', must not stop for that old value.
    first = Runner(**run_cfg(tmp_path, 24, nan_at={2}, nonfinite=dict(action="skip"),
                             default_hooks=dict(checkpoint=dict(interval=1))))
    first.train()
    assert first.optim_wrapper.nonfinite.skipped == 1
    resumed = Runner(**run_cfg(tmp_path, 24, train_cfg=dict(max_epochs=2), resume=True,
                               default_hooks=dict(checkpoint=dict(interval=1))))
    resumed.train()
    assert resumed.iter == 12 and (tmp_path / "epoch_2.pth").exists()
