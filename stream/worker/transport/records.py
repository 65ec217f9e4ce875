"""What the librdkafka transport hands the agent: input records in fetched batches.

One `RecordBatch` is one `consume()` call's records, in the order librdkafka returned them
(each partition's in offset order). It travels through Faust's conductor, channel and
stream as the value of one event, so Faust's per-message work (flow control, decoding, an
event, a queue put, the stream iterator, the sensors) is done once a batch.

An `InputRecord` offers what the agent reads of an input record, under the names of
Faust's message (`topic`, `partition`, `offset`, `key`, `value`, `timestamp` in seconds,
`tp`), and `message` is the record itself, so the agent treats it as it treats Faust's
event of one record. `ack()` tells the consumer that the record's output is stored and so
its offset may be committed; the agent acknowledges records in offset order
(`stream.worker.acks`), so the committable offset of a partition is the last acknowledged
offset plus one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from faust.types import TP


class InputRecord:
    """One input record of a fetched batch."""

    __slots__ = ("_ack", "acked", "key", "offset", "partition", "timestamp", "topic", "tp", "value")

    def __init__(
        self,
        tp: TP,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp: float | None,
        ack: Callable[[InputRecord], bool],
    ) -> None:
        self.tp = tp
        self.topic = tp.topic
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.acked = False
        self._ack = ack

    @property
    def message(self) -> InputRecord:
        """The record itself: the agent reads `event.message` of Faust's events."""
        return self

    def ack(self) -> bool:
        """Its output is stored: its offset may be committed. True the first time."""
        if self.acked:
            return False
        self.acked = True
        return self._ack(self)


class RecordBatch:
    """The records of one fetch, and the assignment generation they were fetched in."""

    __slots__ = ("finished", "generation", "is_current", "records", "size")

    def __init__(
        self, records: list[InputRecord], generation: int, is_current: Callable[[int], bool]
    ) -> None:
        self.records = records
        self.generation = generation
        self.size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
        self.is_current = is_current
        self.finished: asyncio.Event | None = None
        """Set by the agent when it is done with the batch (the consumer waits for it
        before the next fetch with exactly_once, so that the next batch, and so the next
        transaction, holds every record that arrived meanwhile)."""

    def done(self) -> None:
        if self.finished is not None:
            self.finished.set()

    @property
    def current(self) -> bool:
        """False once a rebalance began after the fetch: the rest is for the new owners."""
        return self.is_current(self.generation)

    def next_offsets(self) -> dict[TP, int]:
        """Per partition, the offset after the batch's last record: what a transaction
        that decided this batch would commit with its outputs."""
        offsets: dict[TP, int] = {}
        for record in self.records:
            offsets[record.tp] = record.offset + 1
        return offsets

    def counts(self) -> dict[TP, tuple[int, int]]:
        """Per partition: (records, last offset)."""
        counts: dict[TP, tuple[int, int]] = {}
        for record in self.records:
            seen = counts.get(record.tp)
            counts[record.tp] = ((seen[0] if seen else 0) + 1, record.offset)
        return counts

    def __iter__(self) -> Iterator[InputRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"<RecordBatch {len(self.records)} records, generation {self.generation}>"


def is_batch(value: Any) -> bool:
    return isinstance(value, RecordBatch)
