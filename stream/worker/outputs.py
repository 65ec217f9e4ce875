"""The worker's output producer: librdkafka (confluent-kafka), not Faust's producer.

Faust's aiokafka producer costs tens of microseconds of Python per record (building
futures, encoding batches under the GIL); librdkafka batches, compresses and retries in its
own C threads. Delivery reports are served by `poll()` on the event loop's thread, so the
callbacks that acknowledge input records run where Faust expects them.

librdkafka's local queue is bounded in bytes (`queue.buffering.max.kbytes`, the worker's
in-flight budget): a flood of large outputs waits for room instead of growing the process.
A delivery callback that raises ends that `poll()` call; the poller logs it, reports it to
`on_fault` (the worker's fatal stop) and keeps polling, so the other records' reports are
still served while the worker stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from stream.core.contracts import Route
from stream.core.decision import Output
from stream.kafka import clients
from stream.settings import Settings

log = logging.getLogger("claims_stage.worker")

POLL_INTERVAL = 0.002
"""How often delivery reports are collected when no record arrives to do it."""

DeliveryReport = Callable[[Any, Any], None]


def output_topics(settings: Settings) -> dict[Route, str]:
    return {
        "validated": settings.validated_topic,
        "review": settings.review_topic,
        "rejected": settings.rejected_topic,
        "dead_letter": settings.dlq_topic,
    }


class OutputProducer:
    """Sends outputs to the topic of their route; reports each delivery to a callback.

    `producer` replaces the librdkafka producer (tests pass a fake one).
    """

    def __init__(
        self,
        settings: Settings,
        on_error: Callable[[KafkaError], None] | None = None,
        on_fault: Callable[[BaseException], None] | None = None,
        producer: Any = None,
    ) -> None:
        self.topics = output_topics(settings)
        self.on_fault = on_fault
        if producer is None:
            # librdkafka reports what is not about one record (a refused login) to `error_cb`.
            extra: dict[str, Any] = {"error_cb": on_error} if on_error is not None else {}
            extra["queue.buffering.max.kbytes"] = settings.in_flight_mib * 1024
            producer = clients.producer(settings, **extra)
        self.producer = producer
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._poller is None:
            self._poller = asyncio.ensure_future(self._poll_forever())

    async def _poll_forever(self) -> None:
        # Not a Faust timer: it must keep serving delivery reports while Faust shuts
        # down and waits for the last records to be acknowledged.
        while True:
            self.poll()
            await asyncio.sleep(POLL_INTERVAL)

    def poll(self, timeout: float = 0) -> int:
        """Serve delivery reports; never raises (a callback that did is reported)."""
        try:
            return int(self.producer.poll(timeout))
        except Exception as error:
            log.error("a delivery report's callback failed (%s)", type(error).__name__)
            if self.on_fault is not None:
                self.on_fault(error)
            return 0

    def produce(self, output: Output, on_delivery: DeliveryReport) -> bool:
        """Queue one output without waiting; False when librdkafka's local queue is full.

        Delivery reports are served by the poller every POLL_INTERVAL, not per record:
        one poll per record cost more than the produce call itself. Raises KafkaException
        when librdkafka refuses the record at once (too large, a topic it may not write).
        """
        try:
            self.producer.produce(
                self.topics[output.route],
                value=output.value,
                key=output.key,
                headers=output.headers,
                on_delivery=on_delivery,
            )
        except BufferError:
            return False
        return True

    async def send(self, output: Output, on_delivery: DeliveryReport) -> None:
        """Queue one output; waits only while librdkafka's local queue is full."""
        while not self.produce(output, on_delivery):
            self.poll()
            await asyncio.sleep(POLL_INTERVAL)

    async def send_and_wait(self, output: Output) -> None:
        """Send one output and wait for the broker's answer; raises KafkaException."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def report(error: Any, _: Any) -> None:
            if answered.done():  # the waiter was cancelled (its partition was revoked)
                return
            if error is not None:
                answered.set_exception(KafkaException(error))
            else:
                answered.set_result(None)

        await self.send(output, report)
        await answered

    def flush(self, timeout: float = 30.0) -> int:
        return int(self.producer.flush(timeout))
