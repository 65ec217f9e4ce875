"""The dead-letter topic, as the stage creates it, takes the largest dead letter it writes."""

from __future__ import annotations

import uuid

import pytest

from stream.core.contracts import MAX_DEAD_LETTER_BYTES, DeadLetter, KafkaSource
from stream.core.decision import Decider
from stream.kafka import clients
from stream.kafka.topics import create_topics
from stream.settings import Settings

pytestmark = pytest.mark.integration


def test_the_largest_dead_letter_and_its_key_are_stored(kafka: str, decider: Decider) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka_bootstrap=kafka,
        input_topic=f"in-{suffix}",
        validated_topic=f"ok-{suffix}",
        review_topic=f"review-{suffix}",
        rejected_topic=f"no-{suffix}",
        dlq_topic=f"dlq-{suffix}",
        partitions=1,
    )
    create_topics(settings)
    # An input past what the dead letter can keep whole: it keeps as much as fits.
    raw = b"x" * (MAX_DEAD_LETTER_BYTES + 4096)
    key = b"k" * 1_000_000  # about the largest an input topic of default limits holds
    output = decider.decide(raw, KafkaSource(topic=settings.input_topic, partition=0, offset=0))
    assert output.route == "dead_letter"
    assert len(output.value) > MAX_DEAD_LETTER_BYTES - 65_536  # nearly the whole room
    errors: list[object] = []
    # uncompressed: the topic's limit applies to a batch as stored, and "xxx..." would
    # compress to nothing
    producer = clients.producer(settings, **{"compression.type": "none"})
    producer.produce(
        settings.dlq_topic,
        output.value,
        key,
        headers=list(output.headers),
        on_delivery=lambda error, _: errors.append(error),
    )
    assert producer.flush(30) == 0
    assert errors == [None]  # stored: the topic's limit has room for it
    consumer = clients.consumer(
        settings,
        f"reader-{suffix}",
        **{"auto.offset.reset": "earliest", "enable.partition.eof": False},
    )
    try:
        consumer.subscribe([settings.dlq_topic])
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None
        value = message.value()
        assert value is not None
        letter = DeadLetter.model_validate_json(value)
    finally:
        consumer.close()
    assert letter.raw_value_truncated is not None
    assert letter.raw_value_truncated.total_bytes == len(raw)
