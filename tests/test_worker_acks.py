"""Acknowledgement in offset order (stream/worker/acks.py): outputs are confirmed in any
order, records are acknowledged only in their partition's offset order."""

from __future__ import annotations

import gc
import weakref

from stream.worker.acks import OffsetOrderAcks, Pending


def tracked(
    offsets: list[int], partition: int = 0
) -> tuple[list[int], list[Pending[int]], OffsetOrderAcks[int]]:
    acknowledged: list[int] = []
    acks: OffsetOrderAcks[int] = OffsetOrderAcks(acknowledged.append)
    pending = [acks.add(partition, offset) for offset in offsets]
    return acknowledged, pending, acks


def test_in_order_deliveries_are_acknowledged_at_once() -> None:
    acknowledged, pending, acks = tracked([0, 1, 2])
    for item in pending:
        item.done()
    assert acknowledged == [0, 1, 2]
    assert acks.in_flight() == 0


def test_a_later_delivery_waits_for_the_earlier_ones() -> None:
    """The case Faust's commit arithmetic gets wrong: offset 1 stored before offset 0."""
    acknowledged, pending, acks = tracked([0, 1, 2, 3])
    pending[1].done()
    pending[3].done()
    assert acknowledged == []
    pending[0].done()
    assert acknowledged == [0, 1]
    pending[2].done()
    assert acknowledged == [0, 1, 2, 3]
    assert acks.in_flight() == 0


def test_an_undelivered_output_holds_back_its_partition_only() -> None:
    acknowledged: list[tuple[int, int]] = []
    acks: OffsetOrderAcks[tuple[int, int]] = OffsetOrderAcks(acknowledged.append)
    stuck = acks.add(0, (0, 10))
    later = acks.add(0, (0, 11))
    other = acks.add(1, (1, 5))
    later.done()
    other.done()
    assert acknowledged == [(1, 5)]
    assert acks.in_flight() == 2
    stuck.done()
    assert acknowledged == [(1, 5), (0, 10), (0, 11)]


def test_an_acknowledged_record_is_freed_without_the_garbage_collector() -> None:
    """The agent's record points at its `Pending` (to call `done`), which points back at
    the record: the queue breaks that cycle when the record leaves, so a drained stream does
    not pile up garbage until the next full collection."""

    class Flight:
        pending: Pending[Flight]

    acknowledged: list[int] = []
    acks: OffsetOrderAcks[Flight] = OffsetOrderAcks(lambda f: acknowledged.append(id(f)))
    flight = Flight()
    flight.pending = acks.add(0, flight)
    alive = weakref.ref(flight)
    gc.disable()
    try:
        flight.pending.done()
        del flight
        assert alive() is None
    finally:
        gc.enable()
    assert len(acknowledged) == 1


def test_dropped_records_are_freed_without_the_garbage_collector() -> None:
    class Flight:
        pending: Pending[Flight]

    acks: OffsetOrderAcks[Flight] = OffsetOrderAcks(lambda f: None)
    flight = Flight()
    flight.pending = acks.add(0, flight)
    alive = weakref.ref(flight)
    gc.disable()
    try:
        assert acks.drop([0]) == [flight]
        del flight
        assert alive() is None
    finally:
        gc.enable()
