"""The lag reader keeps one Kafka client for the worker's life and closes it on stop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from confluent_kafka import TopicPartition

from stream.core.decision import Decider
from stream.kafka.lag import LagReader, LagReaderClosedError
from stream.ops.health import WorkerState
from stream.settings import Settings
from stream.worker import lag as worker_lag
from stream.worker.app import create_app

SETTINGS = Settings(kafka_bootstrap="kafka-1:9092", input_topic="encounters")


class FakeConsumer:
    """Answers a lag reading as librdkafka's consumer would: 10 records written to each
    partition, partition 0 committed up to 4, partition 1 never committed."""

    def __init__(self) -> None:
        self.closed = 0
        self.readings = 0
        self.release: threading.Event | None = None  # set: a reading waits for it
        self.started = threading.Event()

    def list_topics(self, topic: str, timeout: float) -> None:
        self.readings += 1
        self.started.set()
        if self.release is not None:
            self.release.wait(5)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, 4 if tp.partition == 0 else -1001)
            for tp in partitions
        ]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        return 0, 10

    def close(self) -> None:
        self.closed += 1


class Factory:
    """A consumer factory that remembers every consumer it made."""

    def __init__(self) -> None:
        self.made: list[FakeConsumer] = []

    def __call__(self, settings: Settings, group_id: str) -> FakeConsumer:
        assert group_id == settings.app_id  # the group's commits are read
        consumer = FakeConsumer()
        self.made.append(consumer)
        return consumer


def test_every_reading_uses_the_same_client() -> None:
    factory = Factory()
    reader = LagReader(SETTINGS, factory)
    readings = [reader.read({0, 1}) for _ in range(5)]
    assert readings == [{0: 6, 1: 10}] * 5
    assert len(factory.made) == 1  # one client (one TLS and SASL handshake) for them all
    assert factory.made[0].readings == 5
    assert factory.made[0].closed == 0


def test_close_closes_the_client_once_and_ends_the_readings() -> None:
    factory = Factory()
    reader = LagReader(SETTINGS, factory)
    reader.read(set())
    reader.close()
    reader.close()
    assert factory.made[0].closed == 1
    with pytest.raises(LagReaderClosedError):
        reader.read({0})
    assert len(factory.made) == 1  # no new client after the close


def test_a_reader_closed_before_its_first_reading_makes_no_client() -> None:
    factory = Factory()
    reader = LagReader(SETTINGS, factory)
    reader.close()
    with pytest.raises(LagReaderClosedError):
        reader.read({0})
    assert factory.made == []


def test_a_close_during_a_reading_closes_the_client_when_the_reading_ends() -> None:
    factory = Factory()
    reader = LagReader(SETTINGS, factory)
    reader.read(set())
    consumer = factory.made[0]
    consumer.release = threading.Event()
    consumer.started.clear()
    results: list[dict[int, int]] = []
    reading = threading.Thread(target=lambda: results.append(reader.read({0})))
    reading.start()
    assert consumer.started.wait(5)
    reader.close()
    assert consumer.closed == 0  # not under a reading's feet
    consumer.release.set()
    reading.join(5)
    assert results == [{0: 6}]
    assert consumer.closed == 1


def test_the_worker_keeps_one_reader_and_closes_it_on_shutdown(
    decider: Decider, monkeypatch: pytest.MonkeyPatch
) -> None:
    readers: list[LagReader] = []
    factory = Factory()

    class Recording(LagReader):
        def __init__(self, settings: Settings) -> None:
            super().__init__(settings, factory)
            readers.append(self)

    monkeypatch.setattr(worker_lag, "LagReader", Recording)
    worker = create_app(SETTINGS, decider)
    assert len(readers) == 1
    reader = readers[0]
    reader.read({0})
    asyncio.run(worker.app.on_before_shutdown.send())
    assert [consumer.closed for consumer in factory.made] == [1]
    with pytest.raises(LagReaderClosedError):
        reader.read({0})


def test_a_closed_reader_is_no_kafka_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reading the stop has closed says nothing about the cluster: /healthz stays as it was."""
    reader = LagReader(SETTINGS, Factory())
    reader.close()
    state = WorkerState(session_timeout=30)
    monitor = worker_lag.LagMonitor(SETTINGS, lambda: {0}, state, metrics=None, reader=reader)  # type: ignore[arg-type]
    asyncio.run(monitor.measure())
    assert state.lag_error is None
