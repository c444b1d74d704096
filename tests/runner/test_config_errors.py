"""Config errors the Runner meets when it sets the seed and builds the loops: each is one
ConfigError naming its key once (``train_cfg.max_epochs``, ``randomness.seed``,
``train_dataloader``), raised before training starts."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

import minirunner.runner.loops as loops
from minirunner.hooks import Hook
from minirunner.runner import Runner, set_random_seed
from minirunner.utils import ConfigError
from runner_support import loader_cfg, run_ranks


def _data(num_samples: int = 16, batch_size: int = 8, shuffle: bool = True, **overrides) -> dict:
    return dict(loader_cfg(num_samples, batch_size, shuffle, num_features=4, num_classes=2), **overrides)


class Started(Hook):
    """Records whether the run got as far as before_run."""

    def __init__(self) -> None:
        self.started = False

    def before_run(self, runner) -> None:
        self.started = True


def _cfg(work_dir, **overrides) -> dict:
    cfg = dict(
        model=dict(type="MLPClassifier", in_features=4, hidden_dims=(8,), num_classes=2),
        work_dir=str(work_dir),
        train_dataloader=_data(),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        val_dataloader=_data(shuffle=False),
        val_cfg=dict(),
        val_evaluator=dict(type="Accuracy"),
        test_dataloader=_data(shuffle=False),
        test_cfg=dict(),
        test_evaluator=dict(type="Accuracy"),
        default_hooks=dict(logger=dict(interval=1000)),
        randomness=dict(seed=0),
    )
    cfg.update(overrides)
    return cfg


def _train_error(tmp_path, **overrides) -> str:
    """The message of the ConfigError that train() raises, checked to come before training."""
    started = Started()
    runner = Runner(**_cfg(tmp_path, custom_hooks=[started], **overrides))
    with pytest.raises(ConfigError) as info:
        runner.train()
    assert not started.started
    assert not list(tmp_path.glob("*.pth"))
    return str(info.value)


# ---------------------------------------------------------------------------- randomness.seed
@pytest.mark.parametrize("seed", ["abc", 1.5, 2.0, -1, 2**32, 10**30, True])
def test_a_bad_seed_names_randomness_seed(seed):
    with pytest.raises(ConfigError) as info:
        set_random_seed(seed)
    assert info.value.key == "randomness.seed"
    assert str(info.value).startswith(
        f"randomness.seed: must be an int from 0 to 4294967295 or None (a random seed), got {seed!r}"
    )


def test_seed_fix_suggests_the_int_of_a_whole_float():
    with pytest.raises(ConfigError, match=r"got 2\.0 \(float\); write e\.g\. seed=2$"):
        set_random_seed(2.0)


@pytest.mark.parametrize("seed", [0, 2**32 - 1, None])
def test_seeds_in_range_are_used(seed):
    used = set_random_seed(seed)
    assert used == seed or seed is None


def test_the_runner_reports_the_seed_from_its_config(tmp_path):
    with pytest.raises(ConfigError) as info:
        Runner(**_cfg(tmp_path, randomness=dict(seed="abc")))
    assert str(info.value) == (
        "randomness.seed: must be an int from 0 to 4294967295 or None (a random seed), got 'abc' (str); "
        "write e.g. seed=0"
    )


# ---------------------------------------------------------------------------- loop arguments
@pytest.mark.parametrize(
    "train_cfg, expected",
    [
        (dict(max_epochs=0), "train_cfg.max_epochs: must be a positive int (the number of epochs to train), got 0"),
        (dict(max_epochs=-1), "train_cfg.max_epochs: must be a positive int"),
        (dict(max_epochs="ten"), "train_cfg.max_epochs: must be a positive int (the number of epochs to train), got 'ten'"),
        (dict(max_epochs=2.0), "train_cfg.max_epochs: must be a positive int"),
        (dict(by_epoch=False, max_iters=0), "train_cfg.max_iters: must be a positive int (the number of iterations"),
        (dict(max_epochs=2, val_interval=0), "train_cfg.val_interval: must be a positive int (validate every this many epochs)"),
        (dict(by_epoch=False, max_iters=4, val_interval="2"), "train_cfg.val_interval: must be a positive int (validate every this many iterations)"),
        (dict(max_epochs=2, val_begin="1"), "train_cfg.val_begin: must be an int >= 0"),
        (dict(max_epochs=2, dynamic_intervals=[(1, 0)]), "train_cfg.dynamic_intervals: intervals must be positive"),
        (dict(max_epochs=2, dynamic_intervals=[3]), "train_cfg.dynamic_intervals: each item must be (milestone, interval)"),
        (dict(max_epoch=2), "train_cfg.max_epoch: EpochBasedTrainLoop got unexpected argument(s) 'max_epoch'"),
    ],
)
def test_train_cfg_errors_name_the_key_once(tmp_path, train_cfg, expected):
    message = _train_error(tmp_path, train_cfg=train_cfg)
    assert message.startswith(expected)
    assert "train_cfg.train_cfg" not in message


def test_val_and_test_cfg_errors_name_their_keys(tmp_path):
    assert _train_error(tmp_path, val_cfg=dict(fp16="yes")).startswith("val_cfg.fp16: must be True or False, got 'yes'; ")
    runner = Runner(**_cfg(tmp_path, test_cfg=dict(fp16=1)))
    with pytest.raises(ConfigError, match=r"^test_cfg\.fp16: must be True or False, got 1; "):
        runner.test()


# ---------------------------------------------------------------------------- empty dataloaders
def test_an_empty_training_set_is_an_error_not_a_run_of_nothing(tmp_path):
    message = _train_error(tmp_path, train_dataloader=_data(dataset=[]))
    assert message == (
        "train_dataloader: its dataset (list) is empty, so it yields no batch; give the dataset "
        "samples (check its paths, split and filters)"
    )


@pytest.mark.parametrize("train_cfg", [dict(max_epochs=3), dict(by_epoch=False, max_iters=5)])
def test_a_dataset_smaller_than_a_batch_with_drop_last(tmp_path, train_cfg):
    message = _train_error(tmp_path, train_cfg=train_cfg, train_dataloader=_data(6, 8, drop_last=True))
    assert message == (
        "train_dataloader: its dataset has 6 samples, fewer than batch_size=8, and drop_last=True "
        "drops the incomplete batch, so it yields no batch; set batch_size to 6 or less, or drop_last=False"
    )


def test_an_empty_validation_set_fails_before_training(tmp_path):
    # train() builds the val loop before before_run: no epoch is trained for nothing.
    message = _train_error(tmp_path, val_dataloader=_data(dataset=[], shuffle=False))
    assert message.startswith("val_dataloader: its dataset (list) is empty, so it yields no batch; ")


def test_an_empty_test_set(tmp_path):
    runner = Runner(**_cfg(tmp_path, test_dataloader=_data(4, 8, drop_last=True, shuffle=False)))
    with pytest.raises(ConfigError, match=r"^test_dataloader: its dataset has 4 samples, fewer than batch_size=8"):
        runner.test()


def test_a_short_last_batch_is_still_a_batch(tmp_path):
    runner = Runner(**_cfg(tmp_path, train_dataloader=_data(6, 8), default_hooks=dict(checkpoint=None)))
    runner.train()
    assert runner.iter == 1


class Stream(IterableDataset):
    """An iterable dataset without a length."""

    def __iter__(self):
        for index in range(6):
            yield dict(inputs=torch.full((4,), float(index)), data_samples=torch.tensor(index % 2))


def test_iter_based_training_over_a_dataloader_without_len(tmp_path):
    runner = Runner(**_cfg(
        tmp_path,
        train_dataloader=DataLoader(Stream(), batch_size=4),
        train_cfg=dict(by_epoch=False, max_iters=5, val_interval=100),
        default_hooks=dict(checkpoint=None),
        val_dataloader=None, val_cfg=None, val_evaluator=None,
    ))
    runner.train()
    assert runner.iter == 5


def test_iter_based_training_with_an_infinite_sampler_and_drop_last(tmp_path):
    # One pass of 6 samples is shorter than a batch of 8, but the stream does not end.
    data = _data(6, 8, drop_last=True, sampler=dict(type="InfiniteSampler"))
    runner = Runner(**_cfg(
        tmp_path, train_dataloader=data, train_cfg=dict(by_epoch=False, max_iters=3, val_interval=100),
        default_hooks=dict(checkpoint=None),
    ))
    runner.train()
    assert runner.iter == 3


# ---------------------------------------------------------------------------- several processes
def _gathered(monkeypatch, problems: list) -> None:
    """Make the ranks' findings look like ``problems`` (one entry per rank)."""
    monkeypatch.setattr(loops.dist, "all_gather_object", lambda own: list(problems))


def test_training_stops_when_any_rank_gets_no_batch(monkeypatch):
    _gathered(monkeypatch, [None, "its sampler gives nothing"])
    with pytest.raises(ConfigError) as info:
        loops.check_yields_batches(object(), "train_dataloader", every_rank=True)
    assert str(info.value) == "train_dataloader: on rank 1 of 2, its sampler gives nothing"
    # Evaluation gathers the results of all ranks, so one rank without a sample is fine.
    loops.check_yields_batches(object(), "val_dataloader", every_rank=False)
    _gathered(monkeypatch, ["empty", "empty"])
    with pytest.raises(ConfigError, match=r"^val_dataloader: empty$"):
        loops.check_yields_batches(object(), "val_dataloader", every_rank=False)


_TWO_RANKS = textwrap.dedent(
    """
    import sys

    import torch.distributed as dist

    rank, store = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)

    from minirunner.dataset import build_dataloader
    from minirunner.runner import EpochBasedTrainLoop, ValLoop
    from minirunner.utils import ConfigError


    class Runner:
        def iteration_handlers(self, event):
            return []


    def loader(size, batch_size, drop_last=False, round_up=True):
        sampler = dict(type="DefaultSampler", shuffle=False, round_up=round_up)
        return build_dataloader(dict(dataset=list(range(size)), sampler=sampler, batch_size=batch_size,
                                     drop_last=drop_last))


    def train_error(data):
        try:
            EpochBasedTrainLoop(Runner(), data, max_epochs=1)
        except ConfigError as error:
            return str(error)
        raise AssertionError("no ConfigError")


    # 6 samples are 3 per rank: a per-process batch of 4 never fills, on either rank.
    message = train_error(loader(6, 4, drop_last=True))
    assert message == (
        "train_dataloader: its dataset has 6 samples, 3 per process over 2 processes, fewer than "
        "batch_size=4 (a per-process size), and drop_last=True drops the incomplete batch, so it "
        "yields no batch; set batch_size to 3 or less, or drop_last=False"
    ), message
    # One sample without round_up: only rank 0 gets it. Evaluating is fine, training is not,
    # and both ranks say so (rank 0 would otherwise wait for rank 1 forever).
    ValLoop(Runner(), loader(1, 1, round_up=False), evaluator=object())
    message = train_error(loader(1, 1, round_up=False))
    assert message.startswith(
        "train_dataloader: on rank 1 of 2, its sampler (DefaultSampler) gives this process none of "
        "the dataset's 1 sample, so it yields no batch"
    ), message
    dist.destroy_process_group()
    print("OK")
    """
)


@pytest.mark.multiprocess
@pytest.mark.timeout(240)
def test_messages_under_two_processes_count_per_process(tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(_TWO_RANKS)
    for output in run_ranks(script, [tmp_path / "store"], world_size=2, timeout=180):
        assert output.strip().endswith("OK"), output
