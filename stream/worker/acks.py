"""Acknowledgement in offset order: an input record becomes committable only when its own
output and the outputs of every earlier record of its partition are stored.

Outputs go to several topics and many partitions, so the broker confirms them in any order.
Faust commits the contiguous acknowledged prefix of each partition, but its arithmetic
(`Consumer._new_offset`) commits past an unacknowledged record when the gap to the
committed offset is exactly one, or when the committed offset is 0 (faust-streaming
#606). Acknowledging strictly in offset order never leaves such a gap, so the committed
offset can only pass records whose outputs are stored.

A record leaves its queue only once acknowledged: if acknowledging it raises, it stays at
the head, its partition commits nothing past it, and the caller learns of the failure.
On revocation a partition's queue is dropped whole: a late delivery report of one of its
records finds an empty queue and acknowledges nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

Record = TypeVar("Record")


class Pending(Generic[Record]):
    """One input record in flight: decided, its output sent, not yet acknowledged.

    Its record usually points back at it (to call `done`); the queue lets go of the record
    once it leaves, so that no cycle keeps either alive for the garbage collector to find.
    """

    __slots__ = ("delivered", "queue", "record")

    def __init__(self, record: Record, queue: PartitionQueue[Record]) -> None:
        self.record: Record | None = record
        self.queue = queue
        self.delivered = False

    def done(self) -> None:
        """Its output is stored: acknowledge it, and every record now free to follow it."""
        self.delivered = True
        self.queue.release()


class PartitionQueue(Generic[Record]):
    """The records of one input partition in flight, in offset order."""

    __slots__ = ("_acknowledge", "_pending")

    def __init__(self, acknowledge: Callable[[Record], Any]) -> None:
        self._pending: deque[Pending[Record]] = deque()
        self._acknowledge = acknowledge

    def add(self, record: Record) -> Pending[Record]:
        """Track a record; records must be added in their partition's offset order."""
        pending = Pending(record, self)
        self._pending.append(pending)
        return pending

    def release(self) -> None:
        pending = self._pending
        while pending and pending[0].delivered:
            head = pending[0]
            self._acknowledge(head.record)  # type: ignore[arg-type]  # set while queued
            pending.popleft()  # after: if acknowledging raised, the record stays
            head.record = None

    def head(self) -> Record | None:
        """The oldest record still waiting, if any."""
        return self._pending[0].record if self._pending else None

    def clear(self) -> list[Record]:
        """Forget every record; returns them, oldest first."""
        records: list[Record] = []
        for pending in self._pending:
            if pending.record is not None:
                records.append(pending.record)
            pending.record = None
        self._pending.clear()
        return records

    def __len__(self) -> int:
        return len(self._pending)


class OffsetOrderAcks(Generic[Record]):
    """A `PartitionQueue` per input partition, created on first use."""

    def __init__(self, acknowledge: Callable[[Record], Any]) -> None:
        self._acknowledge = acknowledge
        self._queues: dict[Any, PartitionQueue[Record]] = {}

    def add(self, partition: Any, record: Record) -> Pending[Record]:
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = PartitionQueue(self._acknowledge)
        return queue.add(record)

    def drop(self, partitions: Iterable[Any]) -> list[Record]:
        """Forget the records of these partitions (revoked: their new owner decides them
        again); returns the records dropped. Their delivery reports acknowledge nothing."""
        dropped: list[Record] = []
        for partition in partitions:
            queue = self._queues.pop(partition, None)
            if queue is not None:
                dropped += queue.clear()
        return dropped

    def heads(self) -> dict[Any, Record]:
        """The oldest waiting record of each partition that has one."""
        return {
            partition: head
            for partition, queue in self._queues.items()
            if (head := queue.head()) is not None
        }

    def in_flight(self, partitions: Iterable[Any] | None = None) -> int:
        """Records waiting, of every partition or of these."""
        if partitions is None:
            return sum(len(queue) for queue in self._queues.values())
        return sum(len(self._queues.get(partition) or ()) for partition in partitions)
