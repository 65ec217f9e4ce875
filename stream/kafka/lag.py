"""Consumer lag read from the broker: end offset minus committed offset, per partition."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

from stream.kafka import clients
from stream.settings import Settings

ConsumerFactory = Callable[[Settings, str], Any]
"""How a lag reader makes its client: `clients.consumer` (tests pass a fake)."""


class LagReaderClosedError(RuntimeError):
    """The lag reader was closed: the worker is stopping."""


class LagReader:
    """Reads the group's lag for some partitions of the input topic, with one client.

    The client is made at the first reading and kept until `close`: a new one each time
    would cost a TLS and SASL handshake every few seconds. It reads the group's commits
    without joining the group (it subscribes to nothing), so it never takes a partition
    from a worker. Readings run one at a time, in a thread of their own; `close` from
    another thread closes the client at once when no reading is under way, else as soon as
    that reading ends.
    """

    def __init__(self, settings: Settings, make_consumer: ConsumerFactory = clients.consumer):
        self.settings = settings
        self._make_consumer = make_consumer
        self._lock = threading.Lock()  # guards the three below
        self._consumer: Any = None
        self._busy = False
        self._closed = False

    def read(self, partitions: set[int]) -> dict[int, int]:
        """How many input records of each partition are not yet committed by the group.

        It asks for the input topic's metadata even when no partition is held, so that a
        cluster that does not answer raises.
        """
        with self._lock:
            if self._closed:
                raise LagReaderClosedError("the lag reader is closed")
            if self._busy:
                raise RuntimeError("a lag reading is already under way")
            if self._consumer is None:
                self._consumer = self._make_consumer(self.settings, self.settings.app_id)
            consumer, self._busy = self._consumer, True
        try:
            return _lag(consumer, self.settings.input_topic, partitions)
        finally:
            with self._lock:
                self._busy = False
                closing = self._consumer if self._closed else None
                if closing is not None:
                    self._consumer = None
            if closing is not None:
                closing.close()

    def close(self) -> None:
        """Close the client (now, or when the reading under way ends); idempotent."""
        with self._lock:
            self._closed = True
            idle = None if self._busy else self._consumer
            if idle is not None:
                self._consumer = None
        if idle is not None:
            idle.close()


def _lag(consumer: Any, topic: str, partitions: set[int]) -> dict[int, int]:
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
