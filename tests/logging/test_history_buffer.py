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
    with pytest.raises(KeyError):  # the reference engine's class, for code that catches it
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
        with pytest.raises(AssertionError):  # what the reference engine raises
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
    # Trimmed in batches inside, but reading sees exactly the newest max_length values.
    assert values == [16.0, 17.0, 18.0, 19.0] and counts == [1] * 4 and len(buffer) == 4
    assert buffer.mean() == pytest.approx(17.5) and buffer.min() == 16.0


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


def test_constructor_takes_histories_like_the_reference():
    buffer = HistoryBuffer([1.0, 2.0, 9.0], [1, 1, 3])
    assert buffer.data == ([1.0, 2.0, 9.0], [1, 1, 3])
    assert buffer.mean() == pytest.approx(12 / 5)
    assert HistoryBuffer(log_history=[4.0], count_history=[2], max_length=10).mean() == 2.0


def test_constructor_keeps_the_newest_max_length_values_with_a_warning():
    with pytest.warns(UserWarning, match="exceed max_length=2"):
        buffer = HistoryBuffer([1.0, 2.0, 3.0], [1, 1, 1], max_length=2)
    assert buffer.data == ([2.0, 3.0], [1, 1])


def test_constructor_needs_one_count_per_value():
    with pytest.raises(AssertionError, match="3 values but count_history has 2 counts"):
        HistoryBuffer([1.0, 2.0, 3.0], [1, 1])


def test_keyword_names_are_the_references():
    buffer = HistoryBuffer()
    buffer.update(log_val=2.0, count=1)
    buffer.update(log_val=6.0)
    buffer.update(log_val=1.0)
    assert buffer.mean(window_size=2) == pytest.approx(3.5)
    assert buffer.max(window_size=2) == 6.0 and buffer.min(window_size=3) == 1.0
    assert buffer.statistics("mean", window_size=3) == pytest.approx(3.0)


def test_update_rejects_what_is_not_a_number():
    buffer = HistoryBuffer()
    for bad in ("loss", None, [1.0, 2.0]):
        with pytest.raises(TypeError, match="log_val must be a number"):
            buffer.update(bad)
    assert len(buffer) == 0


def test_registered_statistics_get_the_arguments_as_given():
    calls = []

    def weighted_tail_for_test(buffer, window_size=None, *, scale=1.0):
        calls.append((window_size, scale))
        return scale * buffer.mean(window_size)

    assert HistoryBuffer.register_statistics(weighted_tail_for_test) is weighted_tail_for_test
    try:
        buffer = HistoryBuffer([1.0, 3.0, 5.0], [1, 1, 1])
        assert buffer.statistics("weighted_tail_for_test", 2, scale=10.0) == pytest.approx(40.0)
        assert buffer.statistics("weighted_tail_for_test") == pytest.approx(3.0)
        assert calls == [(2, 10.0), (None, 1.0)]
    finally:
        HistoryBuffer._statistics_methods.pop("weighted_tail_for_test")


def test_data_is_lists_not_numpy_arrays():
    values, counts = HistoryBuffer([1.5], [2]).data
    assert type(values) is list and type(counts) is list
