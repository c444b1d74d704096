"""HistoryBuffer: windowed statistics, counts, lazy tensor conversion, state dicts."""

from __future__ import annotations

import pytest
import torch

from minirunner.logging import HistoryBuffer


def _filled(values, counts=None) -> HistoryBuffer:
    buffer = HistoryBuffer()
    for index, value in enumerate(values):
        buffer.update(value, 1 if counts is None else counts[index])
    return buffer


def test_window_statistics():
    buffer = _filled([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
    assert buffer.mean() == pytest.approx(23 / 6)
    assert buffer.mean(2) == pytest.approx(7.0)  # (5 + 9) / 2
    assert buffer.mean(3) == pytest.approx(5.0)  # (1 + 5 + 9) / 3
    assert buffer.mean(100) == pytest.approx(23 / 6)  # a window longer than the history
    assert buffer.current() == 9.0
    assert buffer.min() == 1.0 and buffer.max() == 9.0
    assert buffer.min(2) == 5.0 and buffer.max(4) == 9.0
    assert buffer.min(3) == 1.0


def test_mean_divides_by_the_counts_like_the_reference():
    # Each value is the total of `count` samples: (6 + 4) / (3 + 1), and the window picks the
    # last entries with their counts.
    buffer = _filled([2.0, 6.0, 4.0], counts=[1, 3, 1])
    assert buffer.mean() == pytest.approx(12 / 5)
    assert buffer.mean(2) == pytest.approx(10 / 4)


def test_statistics_by_name():
    buffer = _filled([2.0, 8.0, 5.0])
    assert buffer.statistics("mean", window_size=2) == pytest.approx(6.5)
    assert buffer.statistics("max") == 8.0
    assert buffer.statistics("min", 2) == 5.0
    assert buffer.statistics("current", window_size=10) == 5.0
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        buffer.statistics("median")


def test_register_statistics():
    def spread_for_test(buffer, window_size=None):
        return buffer.max(window_size) - buffer.min(window_size)

    HistoryBuffer.register_statistics(spread_for_test)
    try:
        buffer = _filled([1.0, 7.0, 4.0])
        assert buffer.statistics("spread_for_test") == 6.0
        assert buffer.statistics("spread_for_test", window_size=2) == 3.0
        with pytest.raises(ValueError, match="already registered"):
            HistoryBuffer.register_statistics(spread_for_test)
    finally:
        HistoryBuffer._statistics_methods.pop("spread_for_test")


def test_empty_buffer_says_so():
    with pytest.raises(ValueError, match="no value has been logged"):
        HistoryBuffer().current()


def test_tensors_are_converted_only_when_read(monkeypatch):
    buffer = HistoryBuffer()
    conversions = []
    original = torch.Tensor.tolist

    def counting_tolist(self):
        conversions.append(self.shape)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "tolist", counting_tolist)
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("update must not call .item()"))
    loss = torch.tensor(2.0, requires_grad=True) * 1.5  # a graph node: stored detached
    buffer.update(loss)
    buffer.update(torch.tensor(1.0))
    assert conversions == [] and len(buffer) == 2
    # Reading converts every pending value in one transfer.
    assert buffer.mean() == pytest.approx(2.0)
    assert len(conversions) == 1
    assert buffer.current() == 1.0 and len(conversions) == 1


def test_mixed_floats_and_tensors_keep_their_order():
    buffer = HistoryBuffer()
    buffer.update(torch.tensor(1.0))
    buffer.update(2.0)
    buffer.update(torch.tensor(3.0))
    assert buffer.data[0] == [1.0, 2.0, 3.0]


def test_max_length_keeps_the_newest():
    buffer = HistoryBuffer(max_length=4)
    for value in range(20):
        buffer.update(float(value))
    values, counts = buffer.data
    assert values[-4:] == [16.0, 17.0, 18.0, 19.0]
    assert len(values) == len(counts) <= 5  # trimmed in batches of max_length // 4
    assert buffer.mean(4) == pytest.approx(17.5)


def test_state_dict_round_trip_is_plain():
    buffer = _filled([1.0, torch.tensor(2.5), 4.0], counts=[1, 2, 1])
    state = buffer.state_dict()
    assert state == {"values": [1.0, 2.5, 4.0], "counts": [1, 2, 1], "max_length": 1_000_000}
    restored = HistoryBuffer()
    restored.load_state_dict(state)
    assert restored.mean() == pytest.approx(7.5 / 4)
    assert restored.current() == 4.0


def test_pending_tensors_of_mixed_shapes_dtypes_and_grad_are_read_in_order():
    buffer = HistoryBuffer()
    weight = torch.tensor(3.0, requires_grad=True)
    buffer.update(torch.tensor(1.5))                      # 0-d float32
    buffer.update(torch.tensor([2], dtype=torch.long))    # shape (1,), an integer
    buffer.update(weight * 2)                             # needs grad: stored detached
    buffer.update(torch.tensor(0.25, dtype=torch.float64))
    buffer.update(torch.tensor(True))
    values, counts = buffer.data
    assert values == [1.5, 2.0, 6.0, 0.25, 1.0]
    assert all(type(value) is float for value in values)
    assert counts == [1] * 5


def test_a_pending_tensor_with_several_numbers_is_an_error():
    buffer = HistoryBuffer()
    buffer.update(torch.tensor(1.0))
    buffer.update(torch.tensor([1.0, 2.0]))
    with pytest.raises(RuntimeError):
        buffer.current()
