"""The stage's topics: created on purpose, with the partitions asked for.

A broker that auto-creates a missing topic gives it one partition, which silently caps the
consumer group at one busy worker; so the stage creates its topics itself and the worker
refuses to start without them. On a cluster of three or more brokers they get three replicas,
two of which must take each write, unless the settings say otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from stream.kafka import clients
from stream.kafka.clients import MAX_MESSAGE_BYTES
from stream.kafka.replication import default_min_insync, default_replication
from stream.settings import Settings


class TopicsError(ValueError):
    """The topics cannot be created as the settings ask on this cluster."""


@dataclass(frozen=True)
class TopicState:
    name: str
    role: str
    partitions: int | None  # None: the topic does not exist
    created: bool = False
    replicas: int | None = None
    min_insync_replicas: int | None = None  # known for the topics created here


def replication(settings: Settings, brokers: int) -> tuple[int, int]:
    """(replication factor, min in-sync replicas) for new topics on `brokers` brokers: the
    settings where given, else 3 and 2 with three or more brokers, else one per broker and 1."""
    factor = settings.replication_factor or default_replication(brokers)[0]
    min_insync = settings.min_insync_replicas or default_min_insync(factor)
    if factor > brokers:
        raise TopicsError(
            f"replication factor {factor} needs {factor} brokers; the cluster has {brokers} "
            "(CLAIMS_REPLICATION_FACTOR)"
        )
    if min_insync > factor:
        raise TopicsError(
            f"min.insync.replicas {min_insync} is more than the {factor} replicas: every "
            "write would fail (CLAIMS_MIN_INSYNC_REPLICAS)"
        )
    return factor, min_insync


def stage_topics(settings: Settings) -> dict[str, str]:
    """Topic name -> role."""
    return {
        settings.input_topic: "input",
        settings.validated_topic: "validated",
        settings.review_topic: "review",
        settings.rejected_topic: "rejected",
        settings.dlq_topic: "dead letters",
    }


def _state(metadata: Any, name: str, role: str) -> TopicState:
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None:
        return TopicState(name, role, None)
    replicas = max((len(p.replicas) for p in topic.partitions.values()), default=None)
    return TopicState(name, role, len(topic.partitions), replicas=replicas)


def describe_topics(settings: Settings, timeout: float = 10.0) -> list[TopicState]:
    """Which of the stage's topics exist, with their partition and replica counts."""
    metadata = clients.admin(settings).list_topics(timeout=timeout)
    return [_state(metadata, name, role) for name, role in stage_topics(settings).items()]


def output_topics(settings: Settings, review: bool = True) -> list[str]:
    """The topics the worker writes; the review topic only with `review` (a deployment whose
    policies route nothing to review runs without it, as before the route existed)."""
    return [
        name
        for name, role in stage_topics(settings).items()
        if role != "input" and (review or role != "review")
    ]


def missing_topics(settings: Settings, timeout: float = 10.0) -> list[str]:
    return [t.name for t in describe_topics(settings, timeout) if t.partitions is None]


def existing_topics(settings: Settings, names: list[str], timeout: float = 10.0) -> list[str]:
    """Those of `names` that exist on the cluster, in the order given."""
    metadata = clients.admin(settings).list_topics(timeout=timeout)
    return [
        name for name in names if name in metadata.topics and metadata.topics[name].error is None
    ]


def create_topics(settings: Settings, timeout: float = 30.0) -> list[TopicState]:
    """Create whichever of the stage's topics are missing. Idempotent."""
    admin = clients.admin(settings)
    metadata = admin.list_topics(timeout=timeout)
    factor, min_insync = replication(settings, len(metadata.brokers))
    existing = [_state(metadata, name, role) for name, role in stage_topics(settings).items()]

    def config(name: str) -> dict[str, str]:
        config = {"min.insync.replicas": str(min_insync)}
        if name == settings.dlq_topic:
            config["max.message.bytes"] = str(MAX_MESSAGE_BYTES)
        return config

    wanted = [
        NewTopic(
            state.name,
            num_partitions=settings.partitions,
            replication_factor=factor,
            config=config(state.name),
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
        TopicState(
            s.name,
            s.role,
            s.partitions or settings.partitions,
            s.name in created,
            factor if s.name in created else s.replicas,
            min_insync if s.name in created else None,
        )
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
