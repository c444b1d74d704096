"""The README's extension examples, run as written (the README must stay true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _block_containing(marker: str) -> str:
    for block in _python_blocks():
        if marker in block:
            return block
    raise AssertionError(f"no README python block contains {marker!r}")


@pytest.mark.slow
def test_model_dataset_metric_and_hook_examples_train_together(tmp_path):
    namespace: dict = {}
    exec(_block_containing("class TinyNet(BaseModel)"), namespace)
    dataset_block = _block_containing("class MyData(Dataset)").replace(
        "return dict(inputs=..., data_samples=...)",
        # The README leaves the sample to the reader; give it a learnable one.
        "g = torch.Generator().manual_seed(index)\n"
        "        label = index % 10\n"
        "        x = torch.randn(64, generator=g) * 0.1\n"
        "        x[label] += 1.0\n"
        "        return dict(inputs=x, data_samples=label)",
    )
    exec("import torch\n" + dataset_block, namespace)
    exec(_block_containing("class ErrorRate(BaseMetric)"), namespace)
    hook_block = _block_containing("class StopOnNaN(Hook)")
    exec(hook_block.split("custom_hooks =")[0], namespace)

    from minirunner.runner import Runner

    loader = dict(batch_size=50, sampler=dict(type="DefaultSampler", shuffle=True), dataset=dict(type="MyData"))
    runner = Runner(
        model=dict(type="TinyNet"),
        work_dir=str(tmp_path),
        train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type="DefaultSampler", shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=3),
        val_cfg=dict(),
        val_evaluator=dict(type="ErrorRate"),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.5)),
        custom_hooks=[dict(type="StopOnNaN")],
        default_hooks=dict(checkpoint=None),
        randomness=dict(seed=0),
    )
    runner.train()
    metrics = runner.val()
    assert set(metrics) == {"error"}
    assert metrics["error"] < 10.0  # the README's model learns the README's kind of data


def test_config_language_example_prints_what_it_says(tmp_path, capsys):
    block = _block_containing("cfg = Config.fromfile('configs/digits_mlp.py')")
    lines = [line for line in block.splitlines() if "cfg.optimzer" not in line]
    code = "\n".join(lines).replace("cfg.dump('my_config.py')", f"cfg.dump({str(tmp_path / 'my_config.py')!r})")
    code = code.replace("'configs/digits_mlp.py'", repr(str(README.parent / "configs" / "digits_mlp.py")))
    exec(code, {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "0.05"
    from minirunner.config import Config

    assert Config.fromfile(tmp_path / "my_config.py").optim_wrapper.optimizer.lr == 0.05
