"""The consumer adapter: librdkafka's consumer read in batches, offsets kept in order.

`BatchReader` is the part of the transport that knows no Faust and no event loop, so it is
tested on a fake client:

- `fetch()` calls `consume(num_messages, timeout)` (librdkafka waits with the GIL released)
  and `batch_of()` turns the messages into a `RecordBatch`: errors apart, records of
  partitions no longer held dropped, and a record never handed over twice in one
  assignment (a partition's position only moves forward).
- Rebalance: librdkafka calls `on_assign` and `on_revoke` inside `consume()`, on the
  fetching thread, and each starts a new generation here. librdkafka itself removes from a
  call's result the messages fetched before a partition was revoked or assigned again (a
  version barrier), so what a call returns belongs to the assignment in force when it
  returned: the batch carries that generation, and the agent stops taking its records once
  another rebalance begins (`RecordBatch.current`).
- Acknowledgement: the agent acknowledges a partition's records in offset order, so the
  committable offset is the last acknowledged one plus one; acknowledgements of a
  partition no longer held count for nothing.

Exactly-once processing would plug in here: a batch begins where `batch_of` returns it,
and `RecordBatch.next_offsets()` are the offsets a transaction deciding it would send with
`send_offsets_to_transaction`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, TopicPartition
from faust.types import TP

from stream.worker.transport.records import InputRecord, RecordBatch

log = logging.getLogger("claims_stage.worker")


@dataclass
class Fetched:
    """What one fetch gave: the batch (None when nothing is for the agent) and errors."""

    batch: RecordBatch | None
    errors: list[KafkaError] = field(default_factory=list)


class BatchReader:
    """Batches from a librdkafka consumer (`client`), and the offsets they may commit."""

    def __init__(self, client: Any, max_records: int, wait_seconds: float) -> None:
        self.client = client
        self.max_records = max_records
        self.wait_seconds = wait_seconds
        self.generation = 0
        self._lock = threading.Lock()
        self._held: set[TP] = set()
        self._position: dict[TP, int] = {}
        """The offset after the last record handed over, per partition held."""
        self._acked: dict[TP, int] = {}
        """The offset after the last record acknowledged, per partition held."""
        self._committed: dict[TP, int] = {}
        self._tps: dict[tuple[str, int], TP] = {}
        """One TP per partition, made once."""

    # --- fetching (the fetching thread) ------------------------------------------------------

    def fetch(self) -> tuple[list[Any], int]:
        """What librdkafka has, as soon as it has something: the messages and the generation
        they belong to. `poll()` waits (at most `wait_seconds`) for the first message only,
        then `consume(max_records - 1, 0)` takes what else is already fetched, without
        waiting: at low load a record waits for nobody, under load batches fill up on their
        own while the previous one is decided. (`consume(n, timeout)` alone would hold every
        record until n arrive or the timeout passes.)"""
        first = self.client.poll(self.wait_seconds)
        if first is None:
            return [], self.generation
        began = self.generation
        rest = self.client.consume(self.max_records - 1, 0) if self.max_records > 1 else []
        if self.generation != began:  # a rebalance in consume(): `first` was of the old one
            return rest, self.generation
        return [first, *rest], self.generation

    def batch_of(self, messages: list[Any], generation: int) -> Fetched:
        """The records of one fetch to hand over (the event loop's thread)."""
        fetched = Fetched(None)
        if not messages:
            return fetched
        if generation != self.generation:  # a rebalance began since: not for this owner
            return fetched
        records: list[InputRecord] = []
        held, position, ack, tps = self._held, self._position, self._ack, self._tps
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    fetched.errors.append(error)
                continue
            where = (message.topic(), message.partition())
            tp = tps.get(where)
            if tp is None:
                tp = tps[where] = TP(*where)
            offset = message.offset()
            if tp not in held or offset < position.get(tp, -1):
                continue
            position[tp] = offset + 1
            kind, stamp = message.timestamp()
            records.append(
                InputRecord(
                    tp,
                    offset,
                    message.key(),
                    message.value(),
                    stamp / 1000.0 if kind else None,
                    ack,
                )
            )
        if records:
            fetched.batch = RecordBatch(records, generation, self.is_current)
        return fetched

    def is_current(self, generation: int) -> bool:
        return generation == self.generation

    # --- rebalance (called by librdkafka inside consume(), on the fetching thread) ---------

    def assigned(self, partitions: Iterable[TopicPartition]) -> set[TP]:
        """A new assignment (eager: the whole of it). Returns it as Faust's TPs."""
        tps = {TP(p.topic, p.partition) for p in partitions}
        with self._lock:
            self.generation += 1
            self._held = set(tps)
            for tp in tps:  # reading starts again at the committed offset
                self._position.pop(tp, None)
                self._acked.pop(tp, None)
        return tps

    def revoking(self, partitions: Iterable[TopicPartition]) -> set[TP]:
        """Partitions about to be revoked: nothing fetched from now on is handed over.
        They stay held (acknowledgements still count) until `revoked`."""
        with self._lock:
            self.generation += 1
        return {TP(p.topic, p.partition) for p in partitions}

    def rewind(self, offsets: dict[TP, int]) -> dict[TP, int]:
        """Records from these offsets are to be handed over again (exactly-once: their
        transaction was aborted); returns the offsets of the partitions still held, for the
        client's seek. Only while the fetching thread waits for the agent (no fetch runs)."""
        with self._lock:
            held = {tp: offset for tp, offset in offsets.items() if tp in self._held}
            for tp, offset in held.items():
                self._position[tp] = offset
        return held

    def revoked(self, tps: Iterable[TP]) -> dict[TP, int]:
        """Forget revoked partitions; returns the offsets still to commit for them."""
        with self._lock:
            final = self.committable(tps)
            for tp in tps:
                self._held.discard(tp)
                self._position.pop(tp, None)
                self._acked.pop(tp, None)
                self._committed.pop(tp, None)
        return final

    # --- acknowledgement and commits ---------------------------------------------------------

    def _ack(self, record: InputRecord) -> bool:
        tp = record.tp
        if tp not in self._held:
            return False  # revoked meanwhile: its new owner decides it again
        self._acked[tp] = record.offset + 1
        return True

    def committable(self, tps: Iterable[TP] | None = None) -> dict[TP, int]:
        """Offsets acknowledged past what was committed, per partition held."""
        acked, committed = self._acked, self._committed
        wanted = acked if tps is None else {tp: acked[tp] for tp in tps if tp in acked}
        return {
            tp: offset
            for tp, offset in wanted.items()
            if tp in self._held and offset > committed.get(tp, -1)
        }

    def commit(self, offsets: dict[TP, int]) -> None:
        """Ask librdkafka to commit, without waiting (the answer comes to `commit_done`,
        served inside `consume()`). A commit that waited could wait for ever: librdkafka
        holds commits while the fetching thread is inside a rebalance callback."""
        if not offsets:
            return
        self.client.commit(offsets=_partitions(offsets), asynchronous=True)
        self.committed(offsets)

    def commit_now(self, offsets: dict[TP, int]) -> None:
        """Commit and wait for the broker: only on the fetching thread, inside the
        revocation callback (then librdkafka serves it); raises KafkaException."""
        if offsets:
            self.client.commit(offsets=_partitions(offsets), asynchronous=False)

    def commit_done(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's `on_commit`: a refused commit is asked again with the next one."""
        refused = [p for p in partitions if error is not None or p.error is not None]
        with self._lock:
            for p in refused:
                tp = TP(p.topic, p.partition)
                if self._committed.get(tp) == p.offset:
                    del self._committed[tp]
        if refused:
            first = error or refused[0].error
            name = first.name() if first is not None else "unknown"
            log.warning("offset commit refused (%s); it is asked again", name)

    def committed(self, offsets: dict[TP, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self._held and offset > self._committed.get(tp, -1):
                self._committed[tp] = offset

    @property
    def held(self) -> set[TP]:
        return set(self._held)

    def acknowledged(self, tp: TP) -> int | None:
        return self._acked.get(tp)


def _partitions(offsets: dict[TP, int]) -> list[TopicPartition]:
    return [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in offsets.items()]
