"""BaseDataset as MMEngine documents it: the annotation format, metainfo priority, path
joining, lazy init, subsets (serialized or not), the pipeline and refetching."""

from __future__ import annotations

import json
import os

import pytest

from minirunner.dataset import BaseDataset, Compose
from minirunner.registry import TRANSFORMS
from minirunner.utils import ConfigError


@pytest.fixture
def ann_file(tmp_path):
    data = dict(
        metainfo=dict(dataset_type="test_dataset", task_name="test_task", classes=["from_file"]),
        data_list=[dict(img_path=f"img_{i}.jpg", height=10 + i, width=20, label=i % 3) for i in range(6)],
    )
    path = tmp_path / "annotations" / "ann.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


class CustomDataset(BaseDataset):
    METAINFO = dict(task_name="custom_task", dataset_type="custom_type")


@pytest.mark.parametrize("serialize", [True, False])
def test_loads_the_annotation_file_and_joins_paths(tmp_path, ann_file, serialize):
    data = BaseDataset(ann_file="annotations/ann.json", data_root=str(tmp_path),
                       data_prefix=dict(img_path="imgs"), serialize_data=serialize)
    assert data.ann_file == os.path.join(str(tmp_path), "annotations/ann.json")
    assert len(data) == 6
    info = data.get_data_info(2)
    assert info["img_path"] == os.path.join(str(tmp_path), "imgs", "img_2.jpg")
    assert info["height"] == 12 and info["sample_idx"] == 2
    assert data.get_data_info(-1)["sample_idx"] == 5
    assert data[1]["img_path"].endswith("img_1.jpg")  # no pipeline: the data info itself
    info["height"] = 99
    assert data.get_data_info(2)["height"] == 12  # a copy each time


def test_absolute_prefix_is_kept(ann_file):
    data = BaseDataset(ann_file=str(ann_file), data_root="/root", data_prefix=dict(img_path="/abs"))
    assert data.ann_file == str(ann_file)
    assert data.get_data_info(0)["img_path"] == "/abs/img_0.jpg"


def test_metainfo_priority_argument_over_class_over_file(ann_file):
    data = CustomDataset(ann_file=str(ann_file), metainfo=dict(task_name="custom_task_name"))
    meta = data.metainfo
    assert meta["task_name"] == "custom_task_name"
    assert meta["dataset_type"] == "custom_type"
    assert meta["classes"] == ["from_file"]
    meta["task_name"] = "changed"
    assert data.metainfo["task_name"] == "custom_task_name"
    assert CustomDataset.METAINFO == dict(task_name="custom_task", dataset_type="custom_type")


def test_metainfo_value_naming_a_file_is_read_as_lines(tmp_path, ann_file):
    classes = tmp_path / "classes.txt"
    classes.write_text("cat\ndog\n")
    data = BaseDataset(ann_file=str(ann_file), metainfo=dict(classes=str(classes), name="plain"))
    assert data.metainfo["classes"] == ["cat", "dog"] and data.metainfo["name"] == "plain"


def test_lazy_init_defers_loading(ann_file):
    data = BaseDataset(ann_file=str(ann_file), lazy_init=True)
    assert not data._fully_initialized
    assert data.metainfo == {}  # the file's metainfo arrives with the data
    with pytest.warns(UserWarning):
        assert len(data) == 6
    assert data.metainfo["task_name"] == "test_task"


def test_indices_keep_the_first_samples(ann_file):
    assert len(BaseDataset(ann_file=str(ann_file), indices=4)) == 4
    data = BaseDataset(ann_file=str(ann_file), indices=[5, 0])
    assert [data.get_data_info(i)["height"] for i in range(2)] == [15, 10]


@pytest.mark.parametrize("serialize", [True, False])
def test_get_subset_and_in_place_subset(ann_file, serialize):
    data = BaseDataset(ann_file=str(ann_file), serialize_data=serialize)
    first = data.get_subset(4)
    assert len(first) == 4 and len(data) == 6 and type(first) is BaseDataset
    last = data.get_subset(-2)
    assert [last.get_data_info(i)["height"] for i in range(2)] == [14, 15]
    picked = data.get_subset([3, 1])
    assert [picked.get_data_info(i)["height"] for i in range(2)] == [13, 11]
    assert len(data.get_subset([])) == 0
    data.get_subset_([0, 2, 4])
    assert [data.get_data_info(i)["height"] for i in range(3)] == [10, 12, 14]
    data.get_subset_(-1)
    assert len(data) == 1 and data.get_data_info(0)["height"] == 14
    with pytest.raises(TypeError):
        data.get_subset_("0")


def test_serialized_data_is_one_buffer(ann_file):
    data = BaseDataset(ann_file=str(ann_file))
    assert data.data_list == [] and isinstance(data.data_bytes, bytes) and len(data.data_address) == 6


def test_pipeline_of_callables_and_registered_transforms(ann_file):
    @TRANSFORMS.register_module(name="_TestAddOne", force=True)
    class AddOne:
        def __call__(self, results):
            results["height"] += 1
            return results

    data = BaseDataset(ann_file=str(ann_file), pipeline=[dict(type="_TestAddOne"), lambda r: dict(h=r["height"])])
    assert data[0] == dict(h=11)
    assert "AddOne" in repr(data.pipeline)
    with pytest.raises(TypeError):
        Compose([3])


def test_refetch_when_the_pipeline_returns_none(ann_file):
    data = BaseDataset(ann_file=str(ann_file), pipeline=[lambda r: r if r["label"] == 0 else None])
    for index in range(6):
        assert data[index]["label"] == 0
    bad = BaseDataset(ann_file=str(ann_file), pipeline=[lambda r: None], max_refetch=3)
    with pytest.raises(Exception, match="3"):
        bad[0]
    test = BaseDataset(ann_file=str(ann_file), pipeline=[lambda r: r if r["label"] == 0 else None], test_mode=True)
    assert test[0]["label"] == 0
    with pytest.raises(Exception):
        test[1]


def test_subclass_with_its_own_loader_and_parser(tmp_path, ann_file):
    class VideoDataset(BaseDataset):
        def parse_data_info(self, raw):
            return [dict(raw, frame=0), dict(raw, frame=1)]

        def get_cat_ids(self, idx):
            return [self.get_data_info(idx)["label"]]

    data = VideoDataset(ann_file=str(ann_file))
    assert len(data) == 12 and data.get_cat_ids(3) == [1]


def test_annotation_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(data_list=[])))
    with pytest.raises(ValueError, match="metainfo"):
        BaseDataset(ann_file=str(bad))
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    with pytest.raises(TypeError):
        BaseDataset(ann_file=str(listed))
    pickled = tmp_path / "ann.pkl"
    pickled.write_bytes(b"x")
    with pytest.raises(ConfigError, match="pickle"):
        BaseDataset(ann_file=str(pickled))
    with pytest.raises(FileNotFoundError):
        BaseDataset(ann_file=str(tmp_path / "missing.json"))
    with pytest.raises(KeyError, match="seg_path"):
        BaseDataset(ann_file=str(_write_ann(tmp_path)), data_prefix=dict(seg_path="s"))


def _write_ann(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(dict(metainfo={}, data_list=[dict(img_path="a.jpg")])))
    return path


def test_yaml_annotation_when_pyyaml_is_installed(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "ann.yaml"
    path.write_text(yaml.safe_dump(dict(metainfo=dict(a=1), data_list=[dict(img_path="x.jpg")])))
    data = BaseDataset(ann_file=str(path))
    assert len(data) == 1 and data.metainfo == dict(a=1)
