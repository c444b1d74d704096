"""MessageHub.update_scalar writes HistoryBuffer.update's usual cases out: the histories must
be the same as through HistoryBuffer.update, whatever arrives."""

from __future__ import annotations

import torch

from minirunner.logging import MessageHub
from minirunner.logging.history_buffer import HistoryBuffer


def _values():
    grad = torch.tensor(4.0, requires_grad=True) * 1
    return [
        (1.5, 1), (torch.tensor(2.0), 1), (3.0, 1),  # a float after a pending tensor
        (grad, 1), (torch.tensor([5.0]), 1), (7, 1), (torch.tensor(6.0, dtype=torch.float64), 1),
        (8.0, 3), (torch.tensor(9.0), 2), (torch.nn.Parameter(torch.tensor(10.0)), 1),
    ]


def test_update_scalar_keeps_the_same_history_as_history_buffer_update():
    hub = MessageHub("fast-update-test")
    reference = HistoryBuffer()
    for value, count in _values():
        hub.update_scalar("x", value, count)
        reference.update(value, count)
    assert hub.get_scalar("x").data == reference.data
    assert hub.get_scalar("x").mean(4) == reference.mean(4)
    assert not any(isinstance(v, torch.Tensor) and v.requires_grad for v in hub.get_scalar("x")._pending)


def test_update_scalar_trims_to_max_length():
    hub = MessageHub("fast-update-trim-test")
    hub.log_scalars["y"] = HistoryBuffer(max_length=4)
    for step in range(23):
        hub.update_scalar("y", float(step) if step % 2 else torch.tensor(float(step)))
    values, counts = hub.get_scalar("y").data
    assert values == [19.0, 20.0, 21.0, 22.0] and counts == [1, 1, 1, 1]
    assert len(hub.get_scalar("y")._counts) <= 5  # trimmed as it went, not only when read
