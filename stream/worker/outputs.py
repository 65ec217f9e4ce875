"""The worker's output producer: librdkafka (confluent-kafka), not Faust's producer.

Faust's aiokafka producer costs tens of microseconds of Python per record (building
futures, encoding batches under the GIL); librdkafka batches, compresses and retries in its
own C threads. Delivery reports are served by `poll()` on the event loop's thread, so the
callbacks that acknowledge input records run where Faust expects them.

librdkafka sends records in batches, and the broker refuses a batch over the topic's
`max.message.bytes` whole: a record refused as too large may be small itself. Such a record
is sent again alone, through a second producer that batches nothing (`produce(alone=True)`,
made on first use); only a refusal of the record alone says that the record is too large.

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

TOO_LARGE = frozenset({"MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"})
"""The broker (or librdkafka, before sending) refuses the record for its size."""
PERMANENT_REFUSALS = frozenset(
    {
        "INVALID_RECORD",
        "INVALID_MSG",
        "INVALID_MSG_SIZE",
        "INVALID_TIMESTAMP",
        "INVALID_REQUIRED_ACKS",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "POLICY_VIOLATION",
        "TOPIC_EXCEPTION",
        "_INVALID_ARG",
        "_BAD_MSG",
    }
)
"""Refusals of a record that the same record would meet again: the topic's configuration
(a compacted dead-letter topic and a record without key, timestamps out of range)."""


def output_topics(settings: Settings) -> dict[Route, str]:
    return {
        "validated": settings.validated_topic,
        "review": settings.review_topic,
        "rejected": settings.rejected_topic,
        "dead_letter": settings.dlq_topic,
    }


def transactional(settings: Settings) -> dict[str, Any]:
    """With exactly_once, the producer's transactional id (`Settings.transactional_id`, the
    scheme is explained in `stream.worker.transactions`) and its timeouts: the broker aborts
    a transaction open longer than `transaction_timeout`, and no output may wait longer."""
    if not settings.exactly_once:
        return {}
    timeout_ms = int(settings.transaction_timeout * 1000)
    return {
        "transactional.id": settings.transactional_id,
        "transaction.timeout.ms": timeout_ms,
        "message.timeout.ms": timeout_ms,
        # The coordinator answers a transaction's first request CONCURRENT_TRANSACTIONS while
        # it still writes the previous one's markers; librdkafka asks again after
        # retry.backoff.ms, 100 ms by default, which made each transaction take 100 ms on a
        # local broker (10 ms: about 15 ms). Retries of real errors still back off
        # exponentially, up to retry.backoff.max.ms: 100 ms, not 1 s, so that a few
        # CONCURRENT_TRANSACTIONS answers in a row cost tens of milliseconds, not a second.
        "retry.backoff.ms": 10,
        "retry.backoff.max.ms": 100,
        # The commit sends what is queued at once: a linger would only delay it.
        "linger.ms": 0,
        # librdkafka waits for a broker state change before it asks again which node
        # coordinates the group; a coordinator node that died and left the cluster's
        # metadata changes state no more, and `send_offsets_to_transaction` then waits past
        # its timeout (confluentinc/librdkafka#5456, #5511). Idle connections closed after
        # 10 s are such state changes: the offsets find the new coordinator. The cost is a
        # reconnection for the first transaction after 10 s without traffic.
        "connections.max.idle.ms": 10_000,
    }


class OutputProducer:
    """Sends outputs to the topic of their route; reports each delivery to a callback.

    `producer` and `solo` replace the librdkafka producers (tests pass fake ones).
    """

    def __init__(
        self,
        settings: Settings,
        on_error: Callable[[KafkaError], None] | None = None,
        on_fault: Callable[[BaseException], None] | None = None,
        producer: Any = None,
        solo: Any = None,
    ) -> None:
        self.settings = settings
        self.topics = output_topics(settings)
        self.on_error = on_error
        self.on_fault = on_fault
        self.producer = (
            producer if producer is not None else self._librdkafka(**transactional(settings))
        )
        self._solo = solo
        self._poller: asyncio.Task[None] | None = None

    def _librdkafka(self, **overrides: Any) -> Any:
        # librdkafka reports what is not about one record (a refused login) to `error_cb`.
        extra: dict[str, Any] = {"error_cb": self.on_error} if self.on_error is not None else {}
        extra["queue.buffering.max.kbytes"] = self.settings.in_flight_mib * 1024
        return clients.producer(self.settings, **extra, **overrides)

    @property
    def solo(self) -> Any:
        """The producer that sends each record in a batch of its own (made on first use)."""
        if self._solo is None:
            self._solo = self._librdkafka(**{"batch.num.messages": 1, "linger.ms": 0})
        return self._solo

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
            served = int(self.producer.poll(timeout))
            if self._solo is not None:
                served += int(self._solo.poll(0))
            return served
        except Exception as error:
            reported = error.args[0] if isinstance(error, KafkaException) and error.args else None
            if isinstance(reported, KafkaError) and reported.fatal() and self.on_error is not None:
                # After a fatal error (fenced, say) poll raises it, at times before
                # `error_cb` has reported it: the fatal stop names it either way.
                self.on_error(reported)
                return 0
            log.error("a delivery report's callback failed (%s)", type(error).__name__)
            if self.on_fault is not None:
                self.on_fault(error)
            return 0

    def produce(self, output: Output, on_delivery: DeliveryReport, alone: bool = False) -> bool:
        """Queue one output without waiting; False when librdkafka's local queue is full.

        Delivery reports are served by the poller every POLL_INTERVAL, not per record:
        one poll per record cost more than the produce call itself. Raises KafkaException
        when librdkafka refuses the record at once (too large, a topic it may not write).
        """
        try:
            (self.solo if alone else self.producer).produce(
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
        waiting = int(self.producer.flush(timeout))
        if self._solo is not None:
            waiting += int(self._solo.flush(timeout))
        return waiting
