"""Reading a topic's records from a point in time, as an onlooker: `whatif --topic`.

The consumer is assigned its partitions directly (no subscription), so it never joins a
consumer group, the stage's or any other, and it commits nothing: its group id is a
throwaway that the broker never hears of. It reads from the first record at or after
`since` up to the end of each partition as it was when the read began (or up to `until`),
and stops there: a replay has an end even while producers keep writing.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from stream.kafka import clients
from stream.settings import Settings

IDLE_TIMEOUT = 60.0
"""Seconds without a record while records remain to read: the broker is gone, give up."""


class ReplayError(RuntimeError):
    """The topic cannot be read; the message says why."""


def _millis(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def read_topic(
    settings: Settings,
    topic: str,
    since: dt.datetime,
    until: dt.datetime | None = None,
    timeout: float = 30.0,
) -> Iterator[tuple[bytes, int, int]]:
    """(value, partition, offset) of every record of `topic` from `since` (to `until`), in
    the order they arrive. Commits nothing, joins no group."""
    consumer = clients.consumer(
        settings,
        f"claims-stage-whatif-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "enable.auto.offset.store": False},
    )
    try:
        ends = _ranges(consumer, topic, since, until, timeout)
        consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in ends.items()])
        remaining = {p: end for p, (_, end) in ends.items()}
        last = time.monotonic()
        while remaining:
            messages = consumer.consume(num_messages=500, timeout=0.5)
            if messages:
                last = time.monotonic()
            elif time.monotonic() - last > IDLE_TIMEOUT:
                raise ReplayError(
                    f"no record from {topic} for {IDLE_TIMEOUT:.0f} s with "
                    f"{len(remaining)} partitions still to read"
                )
            yield from _wanted(topic, messages, remaining)
    except KafkaException as error:
        raise ReplayError(f"reading {topic} on {settings.kafka_bootstrap}: {error}") from error
    finally:
        consumer.close()


def _wanted(
    topic: str, messages: list[Message], remaining: dict[int, int]
) -> Iterator[tuple[bytes, int, int]]:
    """The records of `messages` inside the range, as (value, partition, offset); a partition
    leaves `remaining` once its range is read."""
    for message in messages:
        partition = message.partition() or 0
        offset = message.offset() or 0
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise ReplayError(f"reading {topic}: {error.name()}: {error.str()}")
            if offset >= remaining.get(partition, 0):
                remaining.pop(partition, None)
            continue
        end = remaining.get(partition)
        if end is None or offset >= end:
            continue
        yield message.value() or b"", partition, offset
        if offset + 1 >= end:
            del remaining[partition]


def _ranges(
    consumer: Consumer, topic: str, since: dt.datetime, until: dt.datetime | None, timeout: float
) -> dict[int, tuple[int, int]]:
    """partition -> (first offset at or after `since`, offset to stop before)."""
    metadata = consumer.list_topics(topic, timeout=timeout)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        reason = described.error.str() if described is not None else "not found"
        raise ReplayError(f"topic {topic} cannot be read: {reason}")
    partitions = sorted(described.partitions)
    starts = consumer.offsets_for_times(
        [TopicPartition(topic, p, _millis(since)) for p in partitions], timeout=timeout
    )
    stops = (
        consumer.offsets_for_times(
            [TopicPartition(topic, p, _millis(until)) for p in partitions], timeout=timeout
        )
        if until is not None
        else [TopicPartition(topic, p, -1) for p in partitions]
    )
    ranges: dict[int, tuple[int, int]] = {}
    for start, stop in zip(starts, stops, strict=True):
        _, high = consumer.get_watermark_offsets(
            TopicPartition(topic, start.partition), timeout=timeout
        )
        end = high if stop.offset < 0 else min(stop.offset, high)
        if 0 <= start.offset < end:  # -1: no record at or after `since`
            ranges[start.partition] = (start.offset, end)
    return ranges
