"""Consumer lag read from the broker: end offset minus committed offset, per partition."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from stream.kafka import clients
from stream.settings import Settings


def read_lag(settings: Settings, partitions: set[int]) -> dict[int, int]:
    """How many input records of each partition are not yet committed by the stage's group.

    A short-lived client each time: it reads the group's commits without joining the
    group, and leaves nothing behind when the worker stops. It asks for the input topic's
    metadata even when no partition is held, so that a cluster that does not answer raises.
    """
    topic = settings.input_topic
    consumer = clients.consumer(settings, settings.app_id)
    try:
        consumer.list_topics(topic, timeout=5)
        if not partitions:
            return {}
        wanted = [TopicPartition(topic, p) for p in sorted(partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(wanted, timeout=5)}
        lag: dict[int, int] = {}
        for partition in sorted(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=5, cached=False
            )
            position = committed.get(partition, -1)
            lag[partition] = max(high - (position if position >= 0 else low), 0)
        return lag
    finally:
        consumer.close()
