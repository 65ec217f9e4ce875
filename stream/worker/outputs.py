"""The worker's output producer: librdkafka (confluent-kafka), not Faust's producer.

Faust's aiokafka producer costs tens of microseconds of Python per record (building
futures, encoding batches under the GIL); librdkafka batches, compresses and retries in its
own C threads. Delivery reports are served by `poll()` on the event loop's thread, so the
callbacks that acknowledge input records run where Faust expects them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from stream.core.contracts import Route
from stream.core.decision import Output
from stream.kafka import clients
from stream.settings import Settings

POLL_INTERVAL = 0.002
"""How often delivery reports are collected when no record arrives to do it."""

DeliveryReport = Callable[[Any, Any], None]


class OutputProducer:
    """Sends outputs to the topic of their route; reports each delivery to a callback."""

    def __init__(
        self, settings: Settings, on_error: Callable[[KafkaError], None] | None = None
    ) -> None:
        self.topics: dict[Route, str] = {
            "validated": settings.validated_topic,
            "review": settings.review_topic,
            "rejected": settings.rejected_topic,
            "dead_letter": settings.dlq_topic,
        }
        # librdkafka reports what is not about one record (a refused login) to `error_cb`.
        extra = {"error_cb": on_error} if on_error is not None else {}
        self.producer = clients.producer(settings, **extra)
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._poller is None:
            self._poller = asyncio.ensure_future(self._poll_forever())

    async def _poll_forever(self) -> None:
        # Not a Faust timer: it must keep serving delivery reports while Faust shuts
        # down and waits for the last records to be acknowledged.
        while True:
            self.producer.poll(0)
            await asyncio.sleep(POLL_INTERVAL)

    def produce(self, output: Output, on_delivery: DeliveryReport) -> bool:
        """Queue one output without waiting; False when librdkafka's local queue is full.

        Delivery reports are served by the poller every POLL_INTERVAL, not per record:
        one poll per record cost more than the produce call itself.
        """
        try:
            self.producer.produce(
                self.topics[output.route],
                value=output.value,
                key=output.key,
                headers=output.headers,  # type: ignore[arg-type]  # the stub is invariant
                on_delivery=on_delivery,
            )
        except BufferError:
            return False
        return True

    async def send(self, output: Output, on_delivery: DeliveryReport) -> None:
        """Queue one output; waits only while librdkafka's local queue is full."""
        while not self.produce(output, on_delivery):
            self.producer.poll(0)
            await asyncio.sleep(POLL_INTERVAL)

    async def send_and_wait(self, output: Output) -> None:
        """Send one output and wait for the broker's answer; raises on failure."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def report(error: Any, _: Any) -> None:
            if error is not None:
                answered.set_exception(KafkaException(error))
            else:
                answered.set_result(None)

        await self.send(output, report)
        await answered

    def flush(self, timeout: float = 30.0) -> int:
        return int(self.producer.flush(timeout))
