"""The stage's topics: created on purpose, with the partitions asked for.

A broker that auto-creates a missing topic gives it one partition, which silently caps the
consumer group at one busy worker; so the stage creates its topics itself and the worker
refuses to start without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from stream.kafka import clients
from stream.kafka.clients import MAX_MESSAGE_BYTES
from stream.settings import Settings


@dataclass(frozen=True)
class TopicState:
    name: str
    role: str
    partitions: int | None  # None: the topic does not exist
    created: bool = False


def stage_topics(settings: Settings) -> dict[str, str]:
    """Topic name -> role."""
    return {
        settings.input_topic: "input",
        settings.validated_topic: "validated",
        settings.rejected_topic: "rejected",
        settings.dlq_topic: "dead letters",
    }


def describe_topics(settings: Settings, timeout: float = 10.0) -> list[TopicState]:
    """Which of the stage's topics exist, with their partition counts."""
    metadata = clients.admin(settings).list_topics(timeout=timeout)
    return [
        TopicState(
            name,
            role,
            len(metadata.topics[name].partitions)
            if name in metadata.topics and metadata.topics[name].error is None
            else None,
        )
        for name, role in stage_topics(settings).items()
    ]


def missing_topics(settings: Settings, timeout: float = 10.0) -> list[str]:
    return [t.name for t in describe_topics(settings, timeout) if t.partitions is None]


def create_topics(settings: Settings, timeout: float = 30.0) -> list[TopicState]:
    """Create whichever of the stage's topics are missing. Idempotent."""
    admin = clients.admin(settings)
    existing = describe_topics(settings, timeout)
    wanted = [
        NewTopic(
            state.name,
            num_partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            config={"max.message.bytes": str(MAX_MESSAGE_BYTES)}
            if state.name == settings.dlq_topic
            else {},
        )
        for state in existing
        if state.partitions is None
    ]
    created: set[str] = set()
    if wanted:
        for name, future in admin.create_topics(wanted, request_timeout=timeout).items():
            try:
                future.result()
                created.add(name)
            except KafkaException as error:
                # Another worker or operator created it between our look and our create.
                if error.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    return [
        TopicState(s.name, s.role, s.partitions or settings.partitions, s.name in created)
        for s in existing
    ]


def wait_for_group_coordinator(settings: Settings, timeout: float = 30.0) -> None:
    """Ask for the group's committed offsets once, which waits until the broker's group
    coordinator is up (a new broker creates `__consumer_offsets` on the first such
    request); a worker started before that logs a coordinator error while it retries."""
    consumer = clients.consumer(settings, settings.app_id)
    try:
        consumer.committed([TopicPartition(settings.input_topic, 0)], timeout=timeout)
    finally:
        consumer.close()
