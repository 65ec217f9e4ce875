"""Faust's producer on librdkafka, for what Faust itself sends.

The worker's outputs do not go through Faust's producer (`stream.worker.outputs` queues
them in librdkafka and acknowledges records from the delivery reports). Faust still starts a
producer and flushes it before commits and revocations; this one sends what it is given with
the key, value, headers, partition and timestamp it is given (faust's own `confluent://`
producer swapped key and value and dropped headers and timestamps), with the stage's
security settings, and creates its librdkafka client only when something is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from faust.transport.producer import Producer
from faust.types import TP, RecordMetadata

from stream.kafka import clients
from stream.worker.transport.hooks import hooks_of

log = logging.getLogger("claims_stage.worker")

POLL_INTERVAL = 0.005


class LibrdkafkaProducer(Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None
        self._waiting = 0
        self._poller: asyncio.Task[None] | None = None

    def _ensure_client(self) -> Any:
        if self._client is None:
            self._client = clients.producer(hooks_of(self.app).settings)
        return self._client

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Awaitable[RecordMetadata]:
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[RecordMetadata] = loop.create_future()

        def report(error: Any, message: Any) -> None:
            self._waiting -= 1
            if sent.done():
                return
            if error is not None:
                sent.set_exception(RuntimeError(f"{error.name()}: {error.str()}"))
                return
            tp = TP(message.topic(), message.partition())
            kind, stamp = message.timestamp()
            sent.set_result(
                RecordMetadata(tp.topic, tp.partition, tp, message.offset(), stamp / 1000, kind)
            )

        extra: dict[str, Any] = {}
        if partition is not None:
            extra["partition"] = partition
        if timestamp is not None:
            extra["timestamp"] = int(timestamp * 1000)
        if headers:
            extra["headers"] = list(headers.items()) if isinstance(headers, dict) else list(headers)
        self._ensure_client().produce(topic, value=value, key=key, on_delivery=report, **extra)
        self._waiting += 1
        if self._poller is None or self._poller.done():
            self._poller = loop.create_task(self._poll_while_waiting())
        return sent

    async def _poll_while_waiting(self) -> None:
        while self._waiting > 0:
            self._client.poll(0)
            await asyncio.sleep(POLL_INTERVAL)

    async def send_and_wait(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> RecordMetadata:
        return await await_sent(await self.send(topic, key, value, partition, timestamp, headers))

    async def flush(self) -> None:
        await self.buffer.flush()
        if self._client is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._client.flush, 30.0)

    async def create_topic(self, topic: str, *args: Any, **kwargs: Any) -> None:
        log.warning("the stage creates its topics beforehand; not creating %r", topic)

    def key_partition(self, topic: str, key: bytes) -> TP:
        raise NotImplementedError("librdkafka places keys itself (murmur2, as Java clients do)")

    def supports_headers(self) -> bool:
        return True


async def await_sent(sent: Awaitable[RecordMetadata]) -> RecordMetadata:
    return await sent
