"""BaseDataElement: metainfo vs data fields, dict-like access, copies, tensor-like methods,
repr, as MMEngine's "abstract data element" documentation describes them."""

from __future__ import annotations

import importlib.util
import pickle

import pytest
import torch

from minirunner.structures import BaseDataElement


def make() -> BaseDataElement:
    return BaseDataElement(metainfo=dict(img_id=3, img_shape=(8, 8)),
                           bboxes=torch.rand(2, 4), labels=torch.tensor([1, 2]))


def test_fields_are_split_into_metainfo_and_data():
    element = make()
    assert sorted(element.metainfo_keys()) == ["img_id", "img_shape"]
    assert sorted(element.keys()) == ["bboxes", "labels"]
    assert sorted(element.all_keys()) == ["bboxes", "img_id", "img_shape", "labels"]
    assert element.metainfo == dict(img_id=3, img_shape=(8, 8))
    assert element.img_shape == (8, 8) and "labels" in element and "img_id" in element


def test_attribute_assignment_adds_data_and_set_metainfo_adds_metainfo():
    element = BaseDataElement()
    element.scores = torch.ones(2)
    element.set_metainfo(dict(scale=2.0))
    element.set_data(dict(masks=torch.zeros(2)))
    element.set_field(torch.ones(1), "extra")
    assert sorted(element.keys()) == ["extra", "masks", "scores"]
    assert element.metainfo_keys() == ["scale"]


def test_one_name_cannot_be_both_kinds():
    element = make()
    with pytest.raises(AttributeError):
        element.set_metainfo(dict(labels=1))
    with pytest.raises(AttributeError):
        element.img_id = 5
    with pytest.raises(AttributeError):
        element._data_fields = set()


def test_get_pop_and_del():
    element = make()
    assert element.get("missing", 7) == 7 and element.get("img_id") == 3
    labels = element.labels
    assert element.pop("labels") is labels and "labels" not in element
    assert element.pop("labels", None) is None
    with pytest.raises(KeyError):
        element.pop("labels")
    del element.img_id
    assert "img_id" not in element.metainfo_keys()
    del element["bboxes"]
    assert element.keys() == []


def test_values_and_items_follow_keys():
    element = make()
    assert dict(element.items()) == dict(zip(element.keys(), element.values()))
    assert dict(element.metainfo_items()) == element.metainfo
    assert dict(element.all_items()).keys() == set(element.all_keys())


def test_new_and_clone():
    element = make()
    same = element.new()
    assert type(same) is BaseDataElement and same.metainfo == element.metainfo
    assert same.labels is element.labels
    other = element.new(metainfo=dict(img_id=9), labels=torch.tensor([0]))
    assert other.metainfo == dict(img_id=9) and other.keys() == ["labels"]
    clone = element.clone()
    assert sorted(clone.all_keys()) == sorted(element.all_keys())


def test_update_copies_the_other_fields():
    element = make()
    element.update(BaseDataElement(metainfo=dict(img_id=10), scores=torch.ones(2)))
    assert element.img_id == 10 and "scores" in element and "labels" in element


def test_tensor_methods_convert_data_only_and_return_new_elements():
    element = BaseDataElement(metainfo=dict(t=torch.ones(1)), x=torch.ones(2, requires_grad=True) * 2,
                              nested=BaseDataElement(y=torch.ones(1, requires_grad=True) * 3), name="a")
    detached = element.detach()
    assert detached is not element and not detached.x.requires_grad
    assert not detached.nested.y.requires_grad and detached.name == "a"
    assert element.x.requires_grad  # the original is unchanged
    half = element.to(torch.float16)
    assert half.x.dtype is torch.float16 and half.nested.y.dtype is torch.float16
    assert half.t.dtype is torch.float32  # metainfo is not converted
    assert element.cpu().x.device.type == "cpu"


@pytest.mark.skipif(importlib.util.find_spec("numpy") is not None, reason="NumPy is installed")
def test_numpy_without_numpy_is_a_clear_import_error():
    with pytest.raises(ImportError, match="NumPy"):
        make().numpy()
    assert make().to_tensor().keys()  # nothing to convert, works without NumPy


def test_to_dict_and_repr():
    element = BaseDataElement(metainfo=dict(img_id=1), inner=BaseDataElement(v=1))
    assert element.to_dict() == dict(img_id=1, inner=dict(v=1))
    text = repr(element)
    assert text.startswith("<BaseDataElement(") and "META INFORMATION" in text
    assert "DATA FIELDS" in text and "img_id: 1" in text and "<BaseDataElement(" in text.split("inner:")[1]


def test_property_fields_of_subclasses():
    class DetDataSample(BaseDataElement):
        @property
        def gt_instances(self):
            return self._gt_instances

        @gt_instances.setter
        def gt_instances(self, value):
            self.set_field(value, "_gt_instances", dtype=BaseDataElement)

        @gt_instances.deleter
        def gt_instances(self):
            del self._gt_instances

    sample = DetDataSample(gt_instances=BaseDataElement(bboxes=torch.zeros(1, 4)))
    assert sample.keys() == ["gt_instances"]
    with pytest.raises(AssertionError):
        sample.gt_instances = torch.zeros(1)
    del sample.gt_instances
    assert sample.keys() == []


def test_pickles():
    element = make()
    copy = pickle.loads(pickle.dumps(element))
    assert copy.metainfo == element.metainfo and torch.equal(copy.labels, element.labels)
