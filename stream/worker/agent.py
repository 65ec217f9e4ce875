"""The agent: decide each input record, send its output, acknowledge it once stored.

- The stream does not acknowledge a record when the loop moves past it (`noack`). A
  record is acknowledged, and so becomes committable, only in the callback that sees the
  broker acknowledge its output. Faust commits the contiguous acknowledged prefix of each
  partition, so an offset is never committed past a record whose output is not stored.
- A delivery that failed for a reason retrying can cure (a broker away, a timeout) is sent
  again, with backoff, until the broker takes it; meanwhile the committed offset stays
  before it, and a restart would decide it again.
- A refusal that retrying cannot cure is never retried: an output refused for its size
  is sent again alone (the broker refuses a batch over the topic's size whole), and a
  decision refused alone goes to the dead-letter topic as `decision_too_large`, the input
  kept (the record's one output); a refused login, TLS handshake or ACL, an invalid record, or a dead
  letter the dead-letter topic refuses stops the worker (`fatal.FatalStop`: exit status 2,
  the cause named), the record uncommitted.
- `decide` never raises. Delivery reports run inside `poll()`: they catch everything. A
  fault in counting (metrics, logs) is logged by `event_id` and `claim_id`, counted and
  passed over; a fault in delivery or acknowledgement stops the worker with status 1 and
  the fault named, so nothing stalls silently and nothing is committed past it.
- Bounded memory: the bytes of input records and outputs between decision and
  acknowledgement are counted; past `in_flight_mib`, the agent takes no record until
  outputs are stored.
- On revocation, the records of revoked partitions still waiting are dropped: their
  reports acknowledge nothing and their retries stop; their new owner decides them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any

import faust
from confluent_kafka import KafkaError, KafkaException

from stream.core.contracts import KafkaSource
from stream.core.decision import Decider, Output, decision_too_large
from stream.ops.health import WorkerState
from stream.ops.metrics import StageMetrics
from stream.worker.acks import OffsetOrderAcks, Pending
from stream.worker.fatal import FatalStop, fault_name
from stream.worker.outputs import PERMANENT_REFUSALS, POLL_INTERVAL, TOO_LARGE, OutputProducer
from stream.worker.transactions import Transactions
from stream.worker.transport.records import RecordBatch

log = logging.getLogger("claims_stage.worker")

FLIGHT_OVERHEAD = 2048
"""Bytes a record in flight holds besides its input and output: the Python objects that
track it (the flight, the input record, the output, its headers and source)."""
YIELD_EVERY = 64
"""Records of a batch decided between two turns of the event loop."""
REDELIVERY_FIRST_BACKOFF = 0.5
REDELIVERY_MAX_BACKOFF = 30.0


class Flight:
    """One input record between its decision and its acknowledgement."""

    __slots__ = (
        "agent",
        "alone",
        "attempts",
        "decided_at",
        "dropped",
        "event",
        "output",
        "pending",
        "retry",
        "seconds",
        "size",
        "stream",
    )

    def __init__(
        self, agent: ClaimsAgent, event: Any, stream: Any, output: Output, seconds: float
    ) -> None:
        self.agent = agent
        self.event = event
        self.stream = stream
        self.output = output
        self.seconds = seconds
        self.decided_at = time.time()
        self.size = len(event.message.value or b"") + len(output.value) + FLIGHT_OVERHEAD
        self.attempts = 0
        self.alone = False
        """Sent in a batch of its own: a refusal for size is then about this record."""
        self.dropped = False
        self.retry: asyncio.Task[None] | None = None
        self.pending: Pending[Flight] = agent.acks.add(event.message.tp, self)

    def report(self, error: Any, message: Any) -> None:
        """librdkafka's delivery report for this record's output."""
        self.agent.delivered(self, error)


class ClaimsAgent:
    """Decide, send, and acknowledge each input record once its output is stored.

    Each record is decided and its output queued in librdkafka without a wait, and the
    record is acknowledged when its output and those of every earlier record of its
    partition are stored (`acks.OffsetOrderAcks`).
    """

    def __init__(
        self,
        app: faust.App,
        input_topic: Any,
        decider: Decider,
        outputs: OutputProducer,
        metrics: StageMetrics,
        state: WorkerState,
        fatal: FatalStop,
        in_flight_bytes: int = 32 * 1024 * 1024,
        transactions: Transactions | None = None,
    ) -> None:
        self.app = app
        self.transactions = transactions
        """Exactly-once mode: each fetched batch in a transaction (None: at-least-once)."""
        self.fatal = fatal
        self.input = input_topic
        self.decider = decider
        self.outputs = outputs
        self.metrics = metrics
        self.state = state
        self.acks: OffsetOrderAcks[Flight] = OffsetOrderAcks(self.acknowledge)
        self.max_in_flight_bytes = in_flight_bytes
        self.in_flight_bytes = 0
        self._room = asyncio.Event()
        self._retries: set[asyncio.Task[None]] = set()

    # --- taking records -------------------------------------------------------------------

    async def process(self, stream: Any) -> None:
        """The agent body: each record as it arrives, or each fetched batch (librdkafka
        transport). Never lets an exception out (one leaving a Faust agent skips the
        record)."""
        self.outputs.start()
        async for event in stream.noack().events():
            value = event.value
            try:
                if isinstance(value, RecordBatch):
                    try:
                        await self.handle_batch(value)
                    finally:
                        value.done()
                    self.app.sensors.on_stream_event_out(
                        event.message.tp, event.message.offset, stream, event, None
                    )
                else:
                    await self.handle(event, stream)
            except Exception as error:  # a bug: stop rather than leave the record behind
                self.fault("delivery", error, where(event))

    async def handle_batch(self, batch: RecordBatch) -> None:
        """The records of one fetch, in order; the rest is left once a rebalance begins
        (their partitions' next owner reads them from the committed offsets)."""
        if self.transactions is not None:
            await self.transactions.decide_batch(batch, self.decide, self.counted, self.letter_for)
            return
        for n, record in enumerate(batch.records):
            if not batch.current:
                return
            waiting = self.take(record, None)
            if waiting is not None:
                await self.send_when_room(waiting)
            if self.in_flight_bytes > self.max_in_flight_bytes:
                await self.room()
            elif n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # the poller, the web pages and the timers run

    def letter_for(self, message: Any, decision: Output, topic: str) -> Output:
        """The dead letter replacing a decision the output topic refused for its size."""
        log.warning(
            "decision refused as too large; its record goes to the dead-letter topic",
            extra={
                "partition": message.partition,
                "offset": message.offset,
                "event_id": decision.event_id,
                "claim_id": decision.claim_id,
            },
        )
        return too_large_letter(message, decision, topic)

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
        waiting = self.take(event, stream)
        if waiting is not None:  # librdkafka's queue is full: wait, this record only
            await self.send_when_room(waiting)
        if self.in_flight_bytes > self.max_in_flight_bytes:
            await self.room()

    def take(self, event: Any, stream: Any) -> Flight | None:
        """Decide a record and queue its output; returns its flight when librdkafka's
        queue had no room for it (the caller waits and sends it)."""
        output, seconds = self.decide(event)
        flight = Flight(self, event, stream, output, seconds)
        self.in_flight_bytes += flight.size
        return None if self.hand_over(flight) else flight

    def hand_over(self, flight: Flight) -> bool:
        """Queue the flight's output; False when librdkafka's queue is full. A refusal
        librdkafka makes at once gets the same verdict as one the broker reports."""
        try:
            return self.outputs.produce(flight.output, flight.report, flight.alone)
        except KafkaException as error:
            self.delivered(flight, error.args[0])
            return True

    async def send_when_room(self, flight: Flight) -> None:
        while not flight.dropped and not self.hand_over(flight):
            self.outputs.poll()
            await asyncio.sleep(POLL_INTERVAL)

    async def room(self) -> None:
        """Wait until the records in flight hold no more than the budget."""
        while self.in_flight_bytes > self.max_in_flight_bytes:
            self._room.clear()
            await self._room.wait()

    def _release(self, flight: Flight) -> None:
        self.in_flight_bytes -= flight.size
        if self.in_flight_bytes <= self.max_in_flight_bytes:
            self._room.set()

    # --- the broker's answer ---------------------------------------------------------------

    def delivered(self, flight: Flight, error: KafkaError | None) -> None:
        """Delivery report: the broker answered for this record's output. Runs inside
        `poll()`, so nothing may escape it."""
        if flight.dropped:
            return  # its partition was revoked: the new owner decides it again
        try:
            if error is None:
                if flight.attempts:
                    log.info("output accepted after a retry", extra=where(flight))
                flight.pending.done()
            else:
                self.refusal(flight, error)
        except Exception as fault:
            part = "acknowledgement" if error is None else "delivery"
            self.fault(part, fault, where(flight))

    def refusal(self, flight: Flight, error: KafkaError) -> None:
        """The broker did not store this record's output: retry, replace it, or stop."""
        self.metrics.output_send_errors.inc()
        topic = self.outputs.topics[flight.output.route]
        name = error.name()
        if self.fatal.kafka_error(error, topic):  # login, TLS, ACL: the worker stops
            return
        if name in TOO_LARGE and not flight.alone:
            # The broker refuses a batch over the topic's size whole: try the record alone.
            flight.alone = True
            self.retry(flight, backoff=0.0)
        elif name in TOO_LARGE and flight.output.route != "dead_letter":
            self.too_large(flight, topic)
        elif name in TOO_LARGE or name in PERMANENT_REFUSALS:
            log.error("output refused for good (%s)", name, extra=where(flight))
            self.fatal.refused(error, topic)
        else:
            log.warning(
                "output not accepted by the broker (%s); sending it again",
                name,
                extra=where(flight),
            )
            self.retry(flight)

    def too_large(self, flight: Flight, topic: str) -> None:
        """The broker refused the decision for its size: send the record's dead letter."""
        letter = too_large_letter(flight.event.message, flight.output, topic)
        log.warning(
            "decision refused as too large; its record goes to the dead-letter topic",
            extra=where(flight),
        )
        self.in_flight_bytes += len(letter.value) - len(flight.output.value)
        flight.size += len(letter.value) - len(flight.output.value)
        flight.output = letter
        flight.alone = False
        self.retry(flight, backoff=0.0)

    def retry(self, flight: Flight, backoff: float | None = None) -> None:
        if backoff is None:
            backoff = min(REDELIVERY_FIRST_BACKOFF * 2**flight.attempts, REDELIVERY_MAX_BACKOFF)
            message = flight.event.message
            self.state.failing_since.setdefault((message.partition, message.offset), time.time())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # the last flush, after Faust stopped: nothing retries now
            log.warning(
                "output not stored while the worker stops; its record stays uncommitted",
                extra=where(flight),
            )
            return
        flight.attempts += 1
        task = loop.create_task(self.redeliver(flight, backoff))
        flight.retry = task
        self._retries.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._retries.discard)

    async def redeliver(self, flight: Flight, backoff: float) -> None:
        """Send the output again after `backoff` seconds; its report decides what next."""
        await asyncio.sleep(backoff)
        if not self.hand_over(flight):
            await self.send_when_room(flight)

    # --- acknowledgement --------------------------------------------------------------------

    def acknowledge(self, flight: Flight) -> None:
        """Its output and every earlier one of its partition are stored: commit may pass it.

        Faust's acknowledgement first: if it raises, the record stays pending and the
        caller stops the worker. Counting after: a fault there is logged and passed over.
        """
        event = flight.event
        acked = event.ack()  # what `Stream.ack` does, without a task per record
        self._release(flight)
        try:
            self.count(flight, acked)
        except Exception as error:
            self.passed_over("metrics", error, flight)

    def count(self, flight: Flight, acked: bool) -> None:
        """The sensors, the health state and the metrics of an acknowledged record."""
        event = flight.event
        message = event.message
        if flight.stream is not None:  # a Faust event of one record: keep its sensors even
            sensors = self.app.sensors
            if acked:
                sensors.on_message_out(message.tp, message.offset, message)
            sensors.on_stream_event_out(message.tp, message.offset, flight.stream, event, None)
        self.counted(message, flight.output, flight.seconds)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", flight.output.route, extra=where(flight))

    def counted(self, message: Any, output: Output, seconds: float) -> None:
        """The health state and the metrics of a record whose output is stored (and, with
        exactly_once, committed)."""
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
        metrics.decision_seconds.observe(seconds)

    # --- rebalance, health, faults -----------------------------------------------------------

    def partitions_revoked(self, sender: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        """Faust's `on_partitions_revoked` signal (sender, revoked partitions)."""
        self.drop_partitions(args[0])

    def drop_partitions(self, revoked: Iterable[Any]) -> None:
        """Drop what waits for these partitions: their new owner decides it again."""
        dropped = self.acks.drop(revoked)
        for flight in dropped:
            flight.dropped = True
            if flight.retry is not None:
                flight.retry.cancel()
            message = flight.event.message
            self.state.failing_since.pop((message.partition, message.offset), None)
            self._release(flight)
        if dropped:
            log.info(
                "%d records of revoked partitions dropped before their acknowledgement; "
                "their new owner decides them again",
                len(dropped),
            )

    def oldest_pending(self) -> float | None:
        """When the oldest record waiting for its acknowledgement was decided (exactly_once:
        when the open transaction began)."""
        if self.transactions is not None:
            return self.transactions.opened_at
        heads = self.acks.heads()
        return min((flight.decided_at for flight in heads.values()), default=None)

    def in_flight(self, tps: Iterable[Any] | None = None) -> int:
        """Records of these partitions taken and not yet acknowledged (exactly_once: not
        yet committed): what a revocation waits for."""
        if self.transactions is not None:
            return self.transactions.in_flight(tps)
        return self.acks.in_flight(tps)

    def passed_over(self, part: str, error: BaseException, flight: Flight) -> None:
        """A fault that costs a count, not a record: logged, counted, passed over."""
        log.error(
            "could not count a record (%s); it is acknowledged",
            fault_name(error),
            extra=where(flight),
        )
        self._count_fault(part)

    def fault(self, part: str, error: BaseException, context: dict[str, object]) -> None:
        """A fault the worker cannot pass over: logged, and the worker stops (status 1)."""
        log.error("%s failed (%s); the worker stops", part, fault_name(error), extra=context)
        self._count_fault(part)
        self.fatal.fault(part, error)

    def _count_fault(self, part: str) -> None:
        # the metrics may be what failed; the log line has been written
        with contextlib.suppress(Exception):
            self.metrics.worker_faults.labels(part).inc()


def where(subject: Flight | Any) -> dict[str, object]:
    """Log context that identifies a record without any of its content."""
    if not isinstance(subject, Flight):
        message = subject.message
        return {"partition": message.partition, "offset": message.offset}
    message = subject.event.message
    context: dict[str, object] = {"partition": message.partition, "offset": message.offset}
    output = subject.output
    context["event_id"] = output.event_id
    context["claim_id"] = output.claim_id
    context["route"] = output.route
    return context


def too_large_letter(message: Any, decision: Output, topic: str) -> Output:
    """The dead letter of a record whose decision the output topic refused for its size."""
    return decision_too_large(
        message.value,
        KafkaSource.model_construct(
            topic=message.topic, partition=message.partition, offset=message.offset
        ),
        message.key,
        dt.datetime.now(dt.UTC),
        f"the decision is {len(decision.value):,} bytes and topic {topic!r} refused it "
        "as too large (its max.message.bytes is lower)",
        event_id=decision.event_id,
        claim_id=decision.claim_id,
    )
