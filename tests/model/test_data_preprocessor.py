"""BaseDataPreprocessor (device moves) and ImgDataPreprocessor (normalisation, padding)."""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch
from torch import nn

from minirunner.model import BaseDataPreprocessor, ImgDataPreprocessor, MLPClassifier
from minirunner.utils import ConfigError

Pair = namedtuple("Pair", ["left", "right"])


def _nested_batch() -> dict:
    return dict(
        inputs=torch.ones(2, 3),
        data_samples=[torch.tensor(1), "name", 7, None],
        extra=(torch.zeros(1), Pair(torch.ones(1), "x")),
        meta={"inner": {"t": torch.arange(3)}},
    )


def _assert_all_tensors_on(data, device_type: str) -> int:
    count = 0
    if isinstance(data, torch.Tensor):
        assert data.device.type == device_type
        return 1
    if isinstance(data, dict):
        for value in data.values():
            count += _assert_all_tensors_on(value, device_type)
    elif isinstance(data, (list, tuple)):
        for value in data:
            count += _assert_all_tensors_on(value, device_type)
    return count


def test_cast_data_keeps_structure_and_leaves():
    out = BaseDataPreprocessor()(_nested_batch())
    assert out["data_samples"][1:] == ["name", 7, None]
    assert isinstance(out["extra"], tuple) and isinstance(out["extra"][1], Pair)
    assert out["extra"][1].right == "x"
    assert torch.equal(out["meta"]["inner"]["t"], torch.arange(3))


def test_preprocessor_follows_the_owning_model_to_another_device():
    # The meta device stands in for an accelerator: moving the model must move the batch.
    model = MLPClassifier(in_features=3, hidden_dims=(4,), num_classes=2)
    assert model.data_preprocessor.device == torch.device("cpu")
    model.to("meta")
    assert model.data_preprocessor.device.type == "meta"
    out = model.data_preprocessor(_nested_batch())
    assert _assert_all_tensors_on(out, "meta") == 5
    model.to_empty(device="cpu")
    assert model.data_preprocessor.device == torch.device("cpu")
    # A dtype-only change keeps the device.
    model.half()
    assert model.data_preprocessor.device == torch.device("cpu")


def test_standalone_preprocessor_moves_with_to():
    pre = BaseDataPreprocessor()
    pre.to(torch.device("meta"))
    assert pre(dict(x=torch.ones(1)))["x"].device.type == "meta"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_moves_pinned_batch_to_cuda_non_blocking():
    model = MLPClassifier(in_features=3, hidden_dims=(4,), num_classes=2).cuda()
    batch = _nested_batch()
    batch["inputs"] = batch["inputs"].pin_memory()
    out = model.data_preprocessor(batch)
    torch.cuda.synchronize()
    assert _assert_all_tensors_on(out, "cuda") == 5
    assert torch.equal(out["inputs"].cpu(), torch.ones(2, 3))
    model.cpu()
    assert model.data_preprocessor(batch)["inputs"].device.type == "cpu"


def test_img_preprocessor_normalises_per_channel():
    pre = ImgDataPreprocessor(mean=[10.0, 20.0], std=[2.0, 4.0])
    images = torch.tensor([[[[12, 14]], [[20, 28]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    out = pre(dict(inputs=images, data_samples=torch.tensor([3])))
    expected = torch.tensor([[[[1.0, 2.0]], [[0.0, 2.0]]]])
    assert out["inputs"].dtype == torch.float32
    assert torch.equal(out["inputs"], expected)
    assert torch.equal(out["data_samples"], torch.tensor([3]))


def test_img_preprocessor_handles_flat_features_and_no_normalisation():
    pre = ImgDataPreprocessor(mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 2.0])
    out = pre(dict(inputs=torch.tensor([[1.0, 4.0, 7.0]])))["inputs"]
    assert torch.equal(out, torch.tensor([[0.0, 2.0, 2.0]]))
    plain = ImgDataPreprocessor()(dict(inputs=torch.tensor([[[[5]]]], dtype=torch.uint8)))
    assert torch.equal(plain["inputs"], torch.tensor([[[[5.0]]]]))


def test_img_preprocessor_swaps_channels_before_normalising():
    pre = ImgDataPreprocessor(mean=[0.0, 0.0, 100.0], std=[1.0, 1.0, 1.0], bgr_to_rgb=True)
    bgr = torch.tensor([[[[1.0]], [[2.0]], [[3.0]]]])  # B=1, G=2, R=3
    assert pre(dict(inputs=bgr))["inputs"].flatten().tolist() == [3.0, 2.0, -99.0]


def test_img_preprocessor_pads_a_list_of_images_to_the_divisor():
    pre = ImgDataPreprocessor(mean=[1.0], std=[1.0], pad_size_divisor=4, pad_value=-5)
    images = [torch.full((1, 2, 3), 3.0), torch.full((1, 5, 1), 1.0)]
    out = pre(dict(inputs=images))["inputs"]
    assert out.shape == (2, 1, 8, 4)
    assert torch.equal(out[0, 0, :2, :3], torch.full((2, 3), 2.0))
    assert (out[0, 0, 2:, :] == -5).all() and (out[0, 0, :, 3:] == -5).all()
    assert torch.equal(out[1, 0, :5, :1], torch.zeros(5, 1))
    stacked = pre(dict(inputs=torch.zeros(1, 1, 5, 8)))["inputs"]
    assert stacked.shape == (1, 1, 8, 8)


def test_img_preprocessor_buffers_move_and_are_not_saved():
    pre = ImgDataPreprocessor(mean=[0.5], std=[0.5])
    assert "mean" not in pre.state_dict()
    model = nn.Sequential(pre).to("meta")
    assert model[0].mean.device.type == "meta"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        (dict(mean=[1.0]), "std"),
        (dict(std=[1.0]), "mean"),
        (dict(mean=[1.0, 2.0], std=[1.0]), "std"),
        (dict(mean=[1.0], std=[0.0]), "std"),
        (dict(bgr_to_rgb=True, rgb_to_bgr=True), "rgb_to_bgr"),
        (dict(pad_size_divisor=0), "pad_size_divisor"),
    ],
)
def test_img_preprocessor_config_errors(kwargs, key):
    with pytest.raises(ConfigError) as info:
        ImgDataPreprocessor(**kwargs)
    assert info.value.key == key


def test_cpu_batch_passes_through_untouched_and_other_devices_are_moved():
    pre = BaseDataPreprocessor()
    batch = dict(inputs=torch.ones(2, 3), data_samples=torch.tensor([0, 1]))
    assert pre(batch) is batch  # nothing to move: no copy, no new dict
    pre.to("meta")
    moved = pre(batch)
    assert moved["inputs"].device.type == "meta" and moved["data_samples"].device.type == "meta"
    pre.to_empty(device="cpu")
    assert pre(batch) is batch  # back on the CPU, the pass-through applies again
    nested = dict(inputs=[torch.ones(1)], data_samples=torch.tensor([0]))
    out = pre(nested)
    assert out is not nested and torch.equal(out["inputs"][0], torch.ones(1))
