"""A user's MMEngine project runs with only ``mmengine`` replaced by ``minirunner`` in its imports.

The project below is written against MMEngine's public API, the way downstream projects are:
its own child registry with a scope (``default_scope='myproj'``), a ``BaseModel`` with
``init_cfg``, a ``BaseDataset`` subclass over a JSON annotation file with a transform
pipeline, a ``BaseMetric``, a ``Hook`` that logs through ``MMLogger``, a ``_base_`` config and
a pure-Python config with ``read_base()``, and MMEngine's ``tools/train.py`` idiom
(``Runner.from_cfg`` or ``RUNNERS.build``). The test writes it with ``mmengine`` imports,
renames them, and trains it in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

PROJECT = {
    "myproj/__init__.py": "",
    "myproj/registry.py": """
        from mmengine.registry import DATASETS as MMENGINE_DATASETS
        from mmengine.registry import HOOKS as MMENGINE_HOOKS
        from mmengine.registry import METRICS as MMENGINE_METRICS
        from mmengine.registry import MODELS as MMENGINE_MODELS
        from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
        from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
        from mmengine.registry import Registry

        MODELS = Registry('model', parent=MMENGINE_MODELS, scope='myproj', locations=['myproj.models'])
        DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='myproj', locations=['myproj.datasets'])
        TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='myproj', locations=['myproj.datasets'])
        METRICS = Registry('metric', parent=MMENGINE_METRICS, scope='myproj', locations=['myproj.metrics'])
        HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='myproj', locations=['myproj.hooks'])
        RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='myproj', locations=['myproj.runner'])
    """,
    "myproj/runner.py": """
        from mmengine.runner import Runner

        from .registry import RUNNERS


        @RUNNERS.register_module()
        class LoudRunner(Runner):
            def train(self):
                self.logger.info('LoudRunner starts training')
                return super().train()
    """,
    "myproj/models.py": """
        import torch
        import torch.nn.functional as F
        from torch import nn

        from mmengine.model import BaseModel

        from .registry import MODELS


        @MODELS.register_module()
        class TinyNet(BaseModel):
            def __init__(self, in_features=4, num_classes=3, init_cfg=None, data_preprocessor=None):
                super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
                self.backbone = nn.Linear(in_features, 16)
                self.head = nn.Linear(16, num_classes)

            def forward(self, inputs, data_samples=None, mode='tensor'):
                logits = self.head(F.relu(self.backbone(inputs)))
                if mode == 'loss':
                    return dict(loss=F.cross_entropy(logits, data_samples))
                if mode == 'predict':
                    return [dict(pred=int(p), gt=int(g)) for p, g in zip(logits.argmax(1), data_samples)]
                return logits
    """,
    "myproj/datasets.py": """
        import torch

        from mmengine.dataset import BaseDataset

        from .registry import DATASETS, TRANSFORMS


        @TRANSFORMS.register_module()
        class PackPoint:
            def __call__(self, results):
                return dict(inputs=torch.tensor(results['x']), data_samples=results['label'])


        @DATASETS.register_module()
        class PointsDataset(BaseDataset):
            METAINFO = dict(classes=('low', 'mid', 'high'))

            def parse_data_info(self, raw_data_info):
                info = dict(raw_data_info)
                info['x'] = [float(v) for v in info['x']]
                return info
    """,
    "myproj/metrics.py": """
        from mmengine.evaluator import BaseMetric

        from .registry import METRICS


        @METRICS.register_module()
        class HitRate(BaseMetric):
            default_prefix = 'points'

            def process(self, data_batch, data_samples):
                for sample in data_samples:
                    self.results.append(sample['pred'] == sample['gt'])

            def compute_metrics(self, results):
                assert self.dataset_meta['classes'] == ('low', 'mid', 'high')
                return dict(hit_rate=100.0 * sum(results) / len(results))
    """,
    "myproj/hooks.py": """
        import json

        from mmengine.hooks import Hook
        from mmengine.logging import MMLogger

        from .registry import HOOKS


        @HOOKS.register_module()
        class RecordHook(Hook):
            priority = 'LOW'

            def __init__(self, out):
                self.out = out
                self.record = dict(iters=0, losses=[], first_weights=None, val=[])

            def before_train(self, runner):
                model = runner.model.module if hasattr(runner.model, 'module') else runner.model
                self.record['first_weights'] = model.head.weight.flatten().tolist()

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                self.record['iters'] += 1
                self.record['losses'].append(float(outputs['loss']))

            def after_val_epoch(self, runner, metrics=None):
                self.record['val'].append(dict(metrics))
                MMLogger.get_current_instance().info(f'RecordHook saw {metrics}')

            def after_run(self, runner):
                with open(self.out, 'w') as handle:
                    json.dump(self.record, handle)
    """,
    "tools/train.py": """
        import argparse

        from mmengine.config import Config, DictAction
        from mmengine.registry import RUNNERS
        from mmengine.runner import Runner


        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument('config')
            parser.add_argument('--work-dir')
            parser.add_argument('--cfg-options', nargs='+', action=DictAction)
            args = parser.parse_args()
            cfg = Config.fromfile(args.config)
            if args.cfg_options is not None:
                cfg.merge_from_dict(args.cfg_options)
            cfg.work_dir = args.work_dir
            if 'runner_type' not in cfg:
                runner = Runner.from_cfg(cfg)
            else:
                runner = RUNNERS.build(cfg)
            runner.train()


        if __name__ == '__main__':
            main()
    """,
    "configs/_base_/default_runtime.py": """
        default_scope = 'myproj'
        custom_imports = dict(
            imports=['myproj.models', 'myproj.datasets', 'myproj.metrics', 'myproj.hooks', 'myproj.runner'],
            allow_failed_imports=False)
        default_hooks = dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=2),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
            sampler_seed=dict(type='DistSamplerSeedHook'))
        env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
        log_level = 'INFO'
        load_from = None
        resume = False
    """,
    "configs/tiny.py": """
        _base_ = ['./_base_/default_runtime.py']

        data_root = '{{fileDirname}}/../data'
        model = dict(
            type='TinyNet',
            init_cfg=dict(type='Constant', layer='Linear', val=0.1, bias=0.0,
                          override=dict(name='backbone', type='Normal', std=0.5)))
        train_dataloader = dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='PointsDataset', data_root=data_root, ann_file='train.json',
                         pipeline=[dict(type='PackPoint')]))
        val_dataloader = dict(
            batch_size=4,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='PointsDataset', data_root=data_root, ann_file='val.json',
                         test_mode=True, pipeline=[dict(type='PackPoint')]))
        val_evaluator = dict(type='HitRate')
        train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
        val_cfg = dict()
        optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9))
        param_scheduler = [
            dict(type='LinearLR', start_factor=0.0, by_epoch=False, begin=0, end=4),
            dict(type='MultiStepLR', milestones=[2], gamma=0.5, by_epoch=True),
        ]
        randomness = dict(seed=0)
        custom_hooks = [dict(type='RecordHook', out='record.json')]
    """,
    "configs/new_style/runtime.py": """
        from mmengine.hooks import CheckpointHook, LoggerHook

        default_scope = 'myproj'
        custom_imports = dict(
            imports=['myproj.models', 'myproj.datasets', 'myproj.metrics', 'myproj.hooks'],
            allow_failed_imports=False)
        default_hooks = dict(
            logger=dict(type=LoggerHook, interval=2),
            checkpoint=dict(type=CheckpointHook, interval=1, max_keep_ckpts=2))
        randomness = dict(seed=0)
    """,
    "configs/new_style/tiny_adamw.py": """
        from mmengine.config import read_base

        with read_base():
            from .runtime import *

        from torch.optim import AdamW

        from mmengine.optim import LinearLR

        data_root = '{{fileDirname}}/../../data'
        model = dict(type='TinyNet', init_cfg=dict(type='Constant', layer='Linear', val=0.1, bias=0.0,
                                                   override=dict(name='backbone', type='Normal', std=0.5)))
        train_dataloader = dict(
            batch_size=4,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='PointsDataset', data_root=data_root, ann_file='train.json',
                         pipeline=[dict(type='PackPoint')]))
        val_dataloader = dict(
            batch_size=4,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            dataset=dict(type='PointsDataset', data_root=data_root, ann_file='val.json',
                         test_mode=True, pipeline=[dict(type='PackPoint')]))
        val_evaluator = dict(type='HitRate')
        train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)
        val_cfg = dict()
        optim_wrapper = dict(optimizer=dict(type=AdamW, lr=0.05))
        param_scheduler = [dict(type=LinearLR, start_factor=0.1, by_epoch=False, begin=0, end=4)]
        custom_hooks = [dict(type='RecordHook', out='record.json')]
    """,
}


def _points(count: int, generator: torch.Generator) -> list[dict]:
    """Three classes separated along the first feature, a little noise on the others."""
    samples = []
    for index in range(count):
        label = index % 3
        x = torch.randn(4, generator=generator) * 0.3
        x[0] += 2.0 * (label - 1)
        samples.append(dict(x=x.tolist(), label=label))
    return samples


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("myproj_root")
    for relative, text in PROJECT.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # The only change a user makes: the package name in the imports.
        path.write_text(textwrap.dedent(text).lstrip().replace("mmengine", "minirunner"))
    generator = torch.Generator().manual_seed(0)
    (root / "data").mkdir()
    for split, count in (("train", 48), ("val", 24)):
        annotation = dict(metainfo=dict(dataset_type="points"), data_list=_points(count, generator))
        (root / "data" / f"{split}.json").write_text(json.dumps(annotation))
    return root


def _train(project: Path, config: str, work_dir: Path, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(project), str(REPO)]))
    args = [sys.executable, "tools/train.py", config, "--work-dir", str(work_dir)]
    if options:
        args += ["--cfg-options", *options]
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, timeout=240)


def _check_run(project: Path, work_dir: Path, result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    record = json.loads((project / "record.json").read_text())
    assert record["iters"] == 3 * 12  # 48 samples / batch 4, 3 epochs
    assert all(value == pytest.approx(0.1) for value in record["first_weights"])  # init_cfg: head constant
    assert len(record["val"]) == 3 and all("points/hit_rate" in metrics for metrics in record["val"])
    assert record["val"][-1]["points/hit_rate"] > 90  # the classes are separable: it learned
    assert sorted(p.name for p in work_dir.glob("epoch_*.pth")) == ["epoch_2.pth", "epoch_3.pth"]
    assert "RecordHook saw" in result.stdout  # MMLogger.get_current_instance() in a hook
    return record


@pytest.mark.slow
def test_the_project_trains_with_its_base_config(project, tmp_path):
    record = _check_run(project, tmp_path / "work", _train(project, "configs/tiny.py", tmp_path / "work"))
    assert record["losses"][-1] < record["losses"][0]


@pytest.mark.slow
@pytest.mark.parametrize("runner_type", ["Runner", "LoudRunner"])
def test_the_project_trains_through_runners_build(project, tmp_path, runner_type):
    result = _train(project, "configs/tiny.py", tmp_path / "work", f"runner_type={runner_type}")
    _check_run(project, tmp_path / "work", result)
    assert ("LoudRunner starts training" in result.stdout) == (runner_type == "LoudRunner")


@pytest.mark.slow
def test_the_project_trains_with_a_pure_python_config(project, tmp_path):
    result = _train(project, "configs/new_style/tiny_adamw.py", tmp_path / "work")
    _check_run(project, tmp_path / "work", result)
    dumped = (tmp_path / "work" / "tiny_adamw.py").read_text()
    assert "AdamW" in dumped
