"""The local broker (stream/kafka/local/cluster.py) against real clients: confluent-kafka and aiokafka.

One broker of its own (the session's lone broker), in a temporary home on free ports. The
session copies the broker's jars from ~/.m2 once (Maven downloads them once per machine).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.kafka.local.cluster import READY_LINE, BrokerError, LocalBroker, port_free
from tests.stage_kafka import free_port, wait_for

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"


@pytest.fixture
def broker(held_lone_broker: LocalBroker) -> LocalBroker:
    """The session's lone broker, held for the test: these tests stop and restart it."""
    return held_lone_broker


def _create_topic(bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    for future in futures.values():
        future.result(30)
    # The broker learns of a new topic from the controller a moment after it is created: on a
    # busy machine the first metadata answer may not have it yet.
    topic = wait_for(
        lambda: admin.list_topics(timeout=30).topics.get(name), 30, f"{name} in the metadata"
    )
    assert len(topic.partitions) == partitions


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "record not delivered within 30 s"
    assert errors == []


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Message]:
    """Read `expected` records from the start of `topic` with a fresh consumer group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    got: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg)
    finally:
        consumer.close()
    return got


def test_started_broker_reports_running(broker: LocalBroker) -> None:
    status = broker.status()
    assert status.running, status.detail
    assert status.pid is not None
    assert status.bootstrap == f"{HOST}:{broker.port}"
    assert status.log_path == broker.home / "broker.log"
    assert READY_LINE in status.log_path.read_text()
    assert (broker.home / "broker.pid").read_text().strip() == str(status.pid)
    assert (broker.home / "cluster.id").read_text().strip()
    assert (broker.home / "data" / "meta.properties").is_file()


def test_confluent_kafka_roundtrip(broker: LocalBroker) -> None:
    _create_topic(broker.bootstrap, "lb-confluent")
    _produce(broker.bootstrap, "lb-confluent", b"claim-1", b"hello from confluent-kafka")
    [msg] = _consume_all(broker.bootstrap, "lb-confluent", expected=1)
    assert msg.key() == b"claim-1"
    assert msg.value() == b"hello from confluent-kafka"


def test_topics_are_not_auto_created(broker: LocalBroker) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assert "lb-never-created" not in admin.list_topics(timeout=30).topics
    producer = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": 3000})
    failures: list[KafkaError] = []
    producer.produce(
        "lb-never-created",
        value=b"x",
        on_delivery=lambda err, _msg: failures.append(err) if err is not None else None,
    )
    producer.flush(10)
    assert len(failures) == 1
    assert "lb-never-created" not in admin.list_topics(timeout=30).topics


async def _aiokafka_roundtrip(
    bootstrap: str, topic: str
) -> list[tuple[bytes | None, bytes | None]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello from aiokafka", key=b"claim-2")
        assert meta.offset == 0
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            got.extend((m.key, m.value) for records in batches.values() for m in records)
    finally:
        await consumer.stop()
    return got


def test_aiokafka_roundtrip(broker: LocalBroker) -> None:
    # aiokafka is faust's transport: this proves the worker can talk to this broker version.
    _create_topic(broker.bootstrap, "lb-aiokafka")
    got = asyncio.run(_aiokafka_roundtrip(broker.bootstrap, "lb-aiokafka"))
    assert got == [(b"claim-2", b"hello from aiokafka")]


def test_a_second_start_starts_nothing(broker: LocalBroker) -> None:
    status = broker.status()
    log = status.log_path.stat().st_ino
    # No time at all to wait for a JVM: start() succeeds only if it has none to wait for.
    assert broker.start(timeout=0.0) == broker.bootstrap
    assert broker.status().pid == status.pid
    assert status.log_path.stat().st_ino == log  # a launch would have begun a new log


def test_start_refuses_a_port_taken_by_someone_else(tmp_path: Path, broker: LocalBroker) -> None:
    # Another home on the running broker's port: not its broker, so start() must refuse.
    other = LocalBroker(
        tmp_path / "other", host=HOST, port=broker.port, controller_port=free_port()
    )
    with pytest.raises(BrokerError, match="already in use by another process"):
        other.start(timeout=10)
    assert not (tmp_path / "other" / "broker.pid").exists()


def test_stop_then_restart_keeps_data(broker: LocalBroker) -> None:
    _create_topic(broker.bootstrap, "lb-durable", partitions=1)
    _produce(broker.bootstrap, "lb-durable", b"claim-3", b"survives a restart")
    first_pid = broker.status().pid

    assert broker.stop() is True
    status = broker.status()
    assert not status.running
    assert status.pid is None
    assert status.detail.startswith("not running")
    assert not (broker.home / "broker.pid").exists()
    assert port_free(HOST, broker.port)
    assert broker.stop() is False  # nothing left to stop

    assert broker.start(timeout=120.0) == broker.bootstrap
    status = broker.status()
    assert status.running, status.detail
    assert status.pid != first_pid
    [msg] = _consume_all(broker.bootstrap, "lb-durable", expected=1)
    assert (msg.key(), msg.value()) == (b"claim-3", b"survives a restart")
    # The earlier tests' records are still there too.
    [earlier] = _consume_all(broker.bootstrap, "lb-confluent", expected=1)
    assert earlier.value() == b"hello from confluent-kafka"
