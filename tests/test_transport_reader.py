"""The librdkafka transport's consumer adapter (`BatchReader`) on a fake client: fetch
batching, offsets committed only in acknowledgement order, rebalances and errors; and the
agent taking fetched batches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition
from faust.types import TP

from stream.core.decision import Decider
from stream.worker.transport.reader import BatchReader
from stream.worker.transport.records import RecordBatch
from tests.worker_fakes import WorkerStage, claim

TOPIC = "encounters"


@dataclass
class Message:
    """What librdkafka's consume() returns, as confluent-kafka shows it."""

    partition_: int
    offset_: int
    value_: bytes | None = b"{}"
    error_: KafkaError | None = None
    key_: bytes | None = None
    stamp: int = 1_800_000_000_000

    def error(self) -> KafkaError | None:
        return self.error_

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.stamp)


@dataclass
class Client:
    """librdkafka's consumer: poll() and consume() return what the test queued (one fetch
    at a time: poll its first message, consume the rest); commits recorded."""

    fetches: list[list[Message]] = field(default_factory=list)
    asked: list[tuple[str, int, float]] = field(default_factory=list)
    commits: list[dict[tuple[int, int], int]] = field(default_factory=list)
    during_consume: Any = None
    """Called inside consume(), as librdkafka calls rebalance callbacks."""

    def poll(self, timeout: float) -> Message | None:
        self.asked.append(("poll", 1, timeout))
        if not self.fetches or not self.fetches[0]:
            if self.fetches:
                self.fetches.pop(0)
            return None
        return self.fetches[0].pop(0)

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.asked.append(("consume", num_messages, timeout))
        if self.during_consume is not None:
            self.during_consume()
        rest = self.fetches.pop(0) if self.fetches else []
        return rest[:num_messages]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append({(tp.partition, int(asynchronous)): tp.offset for tp in offsets})


def partitions(*numbers: int) -> list[TopicPartition]:
    return [TopicPartition(TOPIC, n) for n in numbers]


def reader_holding(*numbers: int) -> tuple[BatchReader, Client]:
    client = Client()
    reader = BatchReader(client, max_records=500, wait_seconds=0.02)
    reader.assigned(partitions(*numbers))
    return reader, client


def fetch(reader: BatchReader, client: Client, messages: list[Message]) -> RecordBatch | None:
    client.fetches.append(messages)
    return reader.batch_of(*reader.fetch()).batch


def test_a_fetch_waits_for_its_first_record_only_then_takes_what_is_there() -> None:
    reader, client = reader_holding(0)
    batch = fetch(reader, client, [Message(0, n) for n in range(3)])
    assert client.asked == [("poll", 1, 0.02), ("consume", 499, 0)]
    assert batch is not None
    assert [(r.partition, r.offset) for r in batch] == [(0, 0), (0, 1), (0, 2)]
    record = batch.records[0]
    assert record.message is record
    assert record.tp == TP(TOPIC, 0)
    assert record.timestamp == 1_800_000_000.0


def test_an_empty_fetch_gives_no_batch() -> None:
    reader, client = reader_holding(0)
    assert fetch(reader, client, []) is None
    assert client.asked == [("poll", 1, 0.02)]


def test_a_rebalance_inside_the_fetch_leaves_out_the_record_polled_before_it() -> None:
    """librdkafka drops what a call fetched before a rebalance inside that same call, but
    not what the previous call (the poll) returned: that record is of the old assignment,
    and the new one reads it again from the committed offset."""
    reader, client = reader_holding(0)
    client.during_consume = lambda: reader.assigned(partitions(0))
    batch = fetch(reader, client, [Message(0, 7), Message(0, 3)])
    assert batch is not None
    assert [r.offset for r in batch] == [3]
    assert batch.current


def test_errors_are_set_apart_and_end_of_partition_is_not_one() -> None:
    reader, client = reader_holding(0)
    client.fetches.append(
        [
            Message(0, 0),
            Message(0, -1, error_=KafkaError(KafkaError._PARTITION_EOF)),
            Message(0, -1, error_=KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)),
            Message(0, 1),
        ]
    )
    fetched = reader.batch_of(*reader.fetch())
    assert fetched.batch is not None
    assert [r.offset for r in fetched.batch] == [0, 1]
    assert [e.code() for e in fetched.errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_a_record_is_never_handed_over_twice_in_one_assignment() -> None:
    reader, client = reader_holding(0)
    fetch(reader, client, [Message(0, 0), Message(0, 1)])
    again = fetch(reader, client, [Message(0, 1), Message(0, 2)])
    assert again is not None
    assert [r.offset for r in again] == [2]


def test_records_given_back_after_an_aborted_transaction_are_handed_over_again() -> None:
    reader, client = reader_holding(0)
    fetch(reader, client, [Message(0, 0), Message(0, 1), Message(0, 2)])
    # Exactly-once: the transaction of records 1-2 was aborted; partition 1 is not held.
    seek = reader.rewind({TP(TOPIC, 0): 1, TP(TOPIC, 1): 0})
    assert seek == {TP(TOPIC, 0): 1}
    again = fetch(reader, client, [Message(0, 1), Message(0, 2)])
    assert again is not None
    assert [r.offset for r in again] == [1, 2]


def test_records_of_partitions_not_held_are_not_handed_over() -> None:
    reader, client = reader_holding(0)
    batch = fetch(reader, client, [Message(1, 0), Message(0, 0)])
    assert batch is not None
    assert [(r.partition, r.offset) for r in batch] == [(0, 0)]


def test_the_committable_offset_follows_acknowledgements_in_order() -> None:
    reader, client = reader_holding(0, 1)
    batch = fetch(reader, client, [Message(0, 5), Message(1, 9), Message(0, 6)])
    assert batch is not None
    assert reader.committable() == {}
    batch.records[0].ack()
    assert reader.committable() == {TP(TOPIC, 0): 6}
    batch.records[2].ack()
    batch.records[1].ack()
    assert reader.committable() == {TP(TOPIC, 0): 7, TP(TOPIC, 1): 10}
    reader.commit(reader.committable())
    assert client.commits == [{(0, 1): 7, (1, 1): 10}]  # asked, not waited for
    assert reader.committable() == {}  # nothing new since
    assert batch.records[0].ack() is False  # once only


def test_a_refused_commit_is_asked_again_with_the_next() -> None:
    reader, client = reader_holding(0, 1)
    batch = fetch(reader, client, [Message(0, 0), Message(1, 0)])
    assert batch is not None
    for record in batch:
        record.ack()
    reader.commit(reader.committable())
    # as librdkafka's on_commit reports them: one partition refused, one taken
    refused = SimpleNamespace(
        topic=TOPIC, partition=0, offset=1, error=KafkaError(KafkaError.REBALANCE_IN_PROGRESS)
    )
    reader.commit_done(None, [refused, TopicPartition(TOPIC, 1, 1)])  # type: ignore[list-item]
    assert reader.committable() == {TP(TOPIC, 0): 1}
    reader.commit_done(KafkaError(KafkaError._TIMED_OUT), [TopicPartition(TOPIC, 1, 1)])
    assert reader.committable() == {TP(TOPIC, 0): 1, TP(TOPIC, 1): 1}


def test_the_revocations_commit_waits_for_the_broker() -> None:
    reader, client = reader_holding(0)
    batch = fetch(reader, client, [Message(0, 4)])
    assert batch is not None
    batch.records[0].ack()
    final = reader.revoked(reader.revoking(partitions(0)))
    reader.commit_now(final)
    assert client.commits == [{(0, 0): 5}]


def test_nothing_is_committed_past_an_unacknowledged_record() -> None:
    """The agent acknowledges in offset order; a record it has not acknowledged holds its
    partition's committable offset before it, whatever came after it."""
    reader, client = reader_holding(0)
    batch = fetch(reader, client, [Message(0, n) for n in range(4)])
    assert batch is not None
    batch.records[0].ack()
    batch.records[1].ack()
    assert reader.committable() == {TP(TOPIC, 0): 2}


def test_a_rebalance_makes_the_batch_stale_and_starts_the_partitions_afresh() -> None:
    reader, client = reader_holding(0, 1)
    batch = fetch(reader, client, [Message(0, 0), Message(0, 1), Message(1, 0)])
    assert batch is not None
    assert batch.current
    batch.records[0].ack()
    revoked = reader.revoking(partitions(0, 1))
    assert not batch.current  # the agent leaves the rest to the new owner
    batch.records[2].ack()  # acknowledged while the revocation waits: still counts
    final = reader.revoked(revoked)
    assert final == {TP(TOPIC, 0): 1, TP(TOPIC, 1): 1}
    assert batch.records[1].ack() is False  # after the revocation: counts for nothing
    assert reader.committable() == {}
    reader.assigned(partitions(0))
    again = fetch(reader, client, [Message(0, 1)])  # read again from the committed offset
    assert again is not None
    assert [r.offset for r in again] == [1]


def test_a_batch_fetched_before_a_rebalance_is_not_handed_over() -> None:
    reader, client = reader_holding(0)
    client.fetches.append([Message(0, 0)])
    messages, generation = reader.fetch()
    reader.revoking(partitions(0))
    assert reader.batch_of(messages, generation).batch is None


def test_next_offsets_name_what_a_transaction_would_commit() -> None:
    reader, client = reader_holding(0, 1)
    batch = fetch(reader, client, [Message(0, 3), Message(1, 7), Message(0, 4)])
    assert batch is not None
    assert batch.next_offsets() == {TP(TOPIC, 0): 5, TP(TOPIC, 1): 8}
    assert batch.counts() == {TP(TOPIC, 0): (2, 4), TP(TOPIC, 1): (1, 7)}


# --- the agent on fetched batches -------------------------------------------------------------


def batch_of_claims(reader: BatchReader, client: Client, count: int) -> RecordBatch:
    batch = fetch(reader, client, [Message(n % 2, n // 2, claim(n)) for n in range(count)])
    assert batch is not None
    return batch


def test_the_agent_takes_a_batch_and_commits_follow_its_acknowledgements(
    decider: Decider,
) -> None:
    stage = WorkerStage(decider)
    reader, client = reader_holding(0, 1)
    batch = batch_of_claims(reader, client, 6)
    asyncio.run(stage.agent.handle_batch(batch))
    assert len(stage.producer.sent) == 6
    stage.producer.answer_all(reverse=True)
    stage.outputs.poll()
    assert reader.committable() == {TP(TOPIC, 0): 3, TP(TOPIC, 1): 3}
    assert stage.state.tally.records == 6


def test_the_agent_leaves_a_batch_once_a_rebalance_begins(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = WorkerStage(decider)
    reader, client = reader_holding(0, 1)
    batch = batch_of_claims(reader, client, 6)
    taken: list[Any] = []
    original = stage.agent.take

    def take_then_rebalance(record: Any, stream: Any) -> Any:
        taken.append(record)
        if len(taken) == 2:
            reader.revoking(partitions(0, 1))
        return original(record, stream)

    monkeypatch.setattr(stage.agent, "take", take_then_rebalance)
    asyncio.run(stage.agent.handle_batch(batch))
    assert len(taken) == 2
    assert len(stage.producer.sent) == 2
