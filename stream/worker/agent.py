"""The agent: decide each input record, send its output, acknowledge it once stored.

- The stream does not acknowledge a record when the loop moves past it (`noack`). A
  record is acknowledged, and so becomes committable, only in the callback that sees the
  broker acknowledge its output. Faust commits the contiguous acknowledged prefix of each
  partition, so an offset is never committed past a record whose output is not stored.
- A failed delivery is sent again, with backoff, until the broker takes it; meanwhile the
  committed offset stays before it, and a restart would decide it again. A refusal that
  retrying cannot cure (authentication, TLS, a missing ACL) stops the worker instead
  (`fatal.FatalStop`: exit status 2), the record uncommitted.
- `decide` never raises, and the per-record work sits in its own error boundary, so no
  record stops the agent (an exception leaving a Faust agent skips the record).
- Sends are pipelined: the loop does not wait for one acknowledgement before the next
  record, so throughput is bounded by the producer's batching, not by round trips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from confluent_kafka import KafkaException

from stream.core.contracts import KafkaSource
from stream.core.decision import Decider, Output
from stream.ops.health import WorkerState
from stream.ops.metrics import StageMetrics
from stream.worker.acks import OffsetOrderAcks, Pending
from stream.worker.fatal import FatalStop
from stream.worker.outputs import OutputProducer

log = logging.getLogger("claims_stage.worker")

REDELIVERY_MAX_BACKOFF = 30.0


class Flight:
    """One input record between its decision and its acknowledgement."""

    __slots__ = ("agent", "event", "output", "pending", "seconds", "stream")

    def __init__(
        self, agent: ClaimsAgent, event: Any, stream: Any, output: Output, seconds: float
    ) -> None:
        self.agent = agent
        self.event = event
        self.stream = stream
        self.output = output
        self.seconds = seconds
        self.pending: Pending[Flight] | None = None

    def report(self, error: Any, message: Any) -> None:
        """librdkafka's delivery report for this record's output."""
        self.agent.delivered(self, error, message)


class ClaimsAgent:
    """Decide, send, and acknowledge each input record once its output is stored.

    Records come in batches (`noack_take`: nothing is acknowledged by taking them); each
    is decided and its output queued in librdkafka without a wait, and the record is
    acknowledged when its output and those of every earlier record of its partition are
    stored (`acks.OffsetOrderAcks`).
    """

    def __init__(
        self,
        app: faust.App,
        input_topic: Any,
        decider: Decider,
        outputs: OutputProducer,
        metrics: StageMetrics,
        state: WorkerState,
        batch_size: int = 500,
        batch_within: float = 0.02,
        fatal: FatalStop | None = None,
    ) -> None:
        self.app = app
        self.fatal = fatal
        self.input = input_topic
        self.decider = decider
        self.outputs = outputs
        self.metrics = metrics
        self.state = state
        self.batch_size = batch_size
        self.batch_within = batch_within
        self.acks: OffsetOrderAcks[Flight] = OffsetOrderAcks(self.acknowledge)
        self._retries: set[asyncio.Task[None]] = set()

    async def process(self, stream: Any) -> None:
        """The agent body: never lets an exception out, so no record is ever skipped."""
        self.outputs.start()
        async for events in stream.noack_take(self.batch_size, within=self.batch_within):
            for event in events:
                try:
                    await self.handle(event, stream)
                except Exception:  # the boundary: decide() does not raise, sending might
                    log.exception(
                        "could not hand a record to the producer; it stays unacknowledged "
                        "and is retried",
                        extra=where(event),
                    )

    def decide(self, event: Any) -> tuple[Output, float]:
        """The output for one input record, and the seconds `decide` took."""
        message = event.message
        source = KafkaSource.model_construct(
            topic=message.topic, partition=message.partition, offset=message.offset
        )
        started = time.perf_counter()
        output = self.decider.decide(message.value, source, key=message.key)
        return output, time.perf_counter() - started

    async def handle(self, event: Any, stream: Any) -> None:
        output, seconds = self.decide(event)
        flight = Flight(self, event, stream, output, seconds)
        flight.pending = self.acks.add(event.message.tp, flight)
        try:
            queued = self.outputs.produce(output, flight.report)
        except KafkaException as error:
            # librdkafka refuses at once a topic it knows this user may not write.
            if self.refused(error.args[0], self.outputs.topics[output.route]):
                return  # the worker stops; the record stays uncommitted
            self.retry(flight)
            raise
        except Exception:
            self.retry(flight)  # tracked already: its partition waits for it
            raise
        if not queued:  # librdkafka's queue is full: wait for it, this record only
            await self.outputs.send(output, flight.report)

    def refused(self, error: Any, topic: str | None) -> bool:
        """Whether the cluster refused for good; then the worker is stopping."""
        return self.fatal is not None and self.fatal.kafka_error(error, topic)

    def delivered(self, flight: Flight, error: Any, message: Any = None) -> None:
        """Delivery report: the broker answered for this record's output."""
        if error is not None:
            self.metrics.output_send_errors.inc()
            if self.refused(error, message.topic() if message is not None else None):
                return  # refused for good: the worker stops, the record stays uncommitted
            log.warning(
                "output not accepted by the broker (%s); sending it again",
                error.name(),
                extra=where(flight.event, flight.output),
            )
            self.retry(flight)
            return
        assert flight.pending is not None
        flight.pending.done()

    def acknowledge(self, flight: Flight) -> None:
        """Its output and every earlier one of its partition are stored: commit may pass it."""
        event, output = flight.event, flight.output
        message = event.message
        # What `Stream.ack` does, without a task per record: mark the offset committable
        # and keep Faust's event sensors balanced.
        sensors = self.app.sensors
        if event.ack():
            sensors.on_message_out(message.tp, message.offset, message)
        sensors.on_stream_event_out(message.tp, message.offset, flight.stream, event, None)
        now = time.time()
        state = self.state
        if state.failing_since:
            state.failing_since.pop((message.partition, message.offset), None)
        state.last_progress = state.last_decision = now
        state.tally.record(output)
        metrics = self.metrics
        if message.timestamp:
            state.last_input_timestamp[message.partition] = message.timestamp
            metrics.end_to_end_seconds.observe(max(now - message.timestamp, 0.0))
        metrics.last_decision.set(now)
        metrics.decision_seconds.observe(flight.seconds)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", output.route, extra=where(event, output))

    def retry(self, flight: Flight) -> None:
        task = asyncio.ensure_future(self.redeliver(flight))
        self._retries.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._retries.discard)

    async def redeliver(self, flight: Flight) -> None:
        """Send an output again until the broker takes it. The record stays uncommitted."""
        message = flight.event.message
        self.state.failing_since.setdefault((message.partition, message.offset), time.time())
        backoff = 0.5
        while True:
            await asyncio.sleep(backoff)
            try:
                await self.outputs.send_and_wait(flight.output)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.metrics.output_send_errors.inc()
                if isinstance(error, KafkaException) and self.refused(
                    error.args[0], self.outputs.topics[flight.output.route]
                ):
                    return
                backoff = min(backoff * 2, REDELIVERY_MAX_BACKOFF)
                log.warning(
                    "output still not accepted (%s); next try in %.0f s",
                    type(error).__name__,
                    backoff,
                    extra=where(flight.event, flight.output),
                )
                continue
            log.info("output accepted after a retry", extra=where(flight.event, flight.output))
            assert flight.pending is not None
            flight.pending.done()
            return


def where(event: Any, output: Output | None = None) -> dict[str, object]:
    """Log context that identifies a record without any of its content."""
    message = event.message
    context: dict[str, object] = {"partition": message.partition, "offset": message.offset}
    if output is not None:
        context["event_id"] = output.event_id
        context["claim_id"] = output.claim_id
        context["route"] = output.route
    return context
