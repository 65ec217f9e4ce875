"""The stream worker: the Faust layer around `decide`.

It reads the input topic as raw bytes, calls the same `decide` as batch mode, and sends
the output with the contract's key and headers. Delivery is at least once and nothing is
lost on the way:

- The stream does not acknowledge a record when the loop moves past it (`noack`). A
  record is acknowledged, and so becomes committable, only in the callback that sees the
  broker acknowledge its output. Faust commits the contiguous acknowledged prefix of each
  partition, so an offset is never committed past a record whose output is not stored.
- A failed delivery is sent again, with backoff, until the broker takes it; meanwhile the
  committed offset stays before it, and a restart would decide it again.
- `decide` never raises, and the per-record work sits in its own error boundary, so no
  record stops the agent (an exception leaving a Faust agent skips the record).
- Sends are pipelined: the loop does not wait for one acknowledgement before the next
  record, so throughput is bounded by the producer's batching, not by round trips.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import faust
from aiohttp import web as aiohttp_web
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from stream import __version__, sensor
from stream.contracts import KafkaSource
from stream.decide import Route, Stage, StageOutput, freeze_reference_data
from stream.feed import PARTITIONER
from stream.logs import logging_config
from stream.metrics import StageMetrics
from stream.settings import Settings
from stream.status import StatusSnapshot, render_status
from stream.topics import DEAD_LETTER_MAX_BYTES

log = logging.getLogger("claims_stage.worker")

STALL_SECONDS = 30.0
"""No decision for this long while records wait: the worker is stalled (health 503)."""
LAG_INTERVAL = 5.0
REDELIVERY_MAX_BACKOFF = 30.0
POLL_INTERVAL = 0.002
"""How often delivery reports are collected when no record arrives to do it."""


@dataclass
class WorkerState:
    """What the health check, the lag gauges and the logs need to know."""

    started: float = field(default_factory=time.time)
    last_progress: float = field(default_factory=time.time)
    decided: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    last_input_timestamp: dict[int, float] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    lag_seconds: dict[int, float] = field(default_factory=dict)
    lag_error: str | None = None
    findings: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letter_kinds: Counter[str] = field(default_factory=Counter)
    progress: deque[tuple[float, int]] = field(
        default_factory=lambda: deque([(time.time(), 0)], maxlen=13)
    )
    """(time, decided) every few seconds: the last minute's throughput."""
    last_decision: float | None = None
    failing_since: dict[tuple[int, int], float] = field(default_factory=dict)
    """Records whose output the broker has not taken yet: (partition, offset) -> first failure."""
    assigned_at: float | None = None

    def health(self, partitions: set[int], now: float) -> tuple[bool, str]:
        if not partitions:
            return False, "no partitions assigned to this worker"
        waiting = sum(self.lag.get(p, 0) for p in partitions)
        if self.failing_since:
            oldest = now - min(self.failing_since.values())
            if oldest > STALL_SECONDS:
                return False, (
                    f"{len(self.failing_since)} outputs not accepted by the broker for "
                    f"{oldest:.0f} s"
                )
        since = now - max(self.last_progress, self.assigned_at or 0.0)
        if waiting and since > STALL_SECONDS:
            return False, f"stalled: {waiting} records waiting, nothing decided for {since:.0f} s"
        return True, f"ok: {len(partitions)} partitions, {waiting} records waiting"

    def rate(self) -> float:
        """Records per second over the last minute or so."""
        if len(self.progress) < 2:
            return 0.0
        (start, first), (end, last) = self.progress[0], self.progress[-1]
        return (last - first) / (end - start) if end > start else 0.0


class OutputProducer:
    """The stage's outputs go out through librdkafka (confluent-kafka), not Faust's producer.

    Faust's aiokafka producer costs tens of microseconds of Python per record (building
    futures, encoding batches under the GIL); librdkafka batches, compresses and retries
    in its own C threads. Delivery reports are served by `poll()` on the event loop's
    thread, so the callbacks that acknowledge input records run where Faust expects them.
    """

    def __init__(self, settings: Settings) -> None:
        self.topics: dict[Route, str] = {
            "validated": settings.validated_topic,
            "rejected": settings.rejected_topic,
            "dead_letter": settings.dlq_topic,
        }
        self.producer = Producer(
            {
                **settings.librdkafka_config(),
                "acks": "all",
                "enable.idempotence": True,  # the producer's own retries never duplicate
                "partitioner": PARTITIONER,
                "linger.ms": settings.producer_linger_ms,
                "compression.type": settings.producer_compression,
                "message.max.bytes": DEAD_LETTER_MAX_BYTES,
            }
        )
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

    async def send(self, output: StageOutput, on_delivery: Callable[[Any, Any], None]) -> None:
        """Queue one output; waits only while librdkafka's local queue is full."""
        while True:
            try:
                self.producer.produce(
                    self.topics[output.route],
                    value=output.value,
                    key=output.key,
                    headers=list(output.headers),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                self.producer.poll(0)
                await asyncio.sleep(POLL_INTERVAL)
        # Delivery reports are served by the poller every POLL_INTERVAL, not per record:
        # one poll per record cost more than the produce call itself.

    async def send_and_wait(self, output: StageOutput) -> None:
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


class ClaimsAgent:
    """Decide, send, and acknowledge each input record once its output is stored."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        stage: Stage,
        metrics: StageMetrics,
        state: WorkerState,
    ) -> None:
        self.app = app
        self.stage = stage
        self.metrics = metrics
        self.state = state
        self.outputs = OutputProducer(settings)
        self._retries: set[asyncio.Task[None]] = set()
        self.input = app.topic(
            settings.input_topic, key_serializer="raw", value_serializer="raw", allow_empty=True
        )

    async def process(self, stream: Any) -> None:
        """The agent body: never lets an exception out, so no record is ever skipped."""
        self.outputs.start()
        async for event in stream.noack().events():
            try:
                await self.handle(event, stream)
            except Exception:  # the boundary: decide() does not raise, sending might
                log.exception(
                    "could not hand a record to the producer; it stays unacknowledged "
                    "and is retried",
                    extra=_where(event),
                )
                self.retry(event, stream, None, 0.0)

    async def handle(self, event: Any, stream: Any) -> None:
        message = event.message
        source = KafkaSource.model_construct(
            topic=message.topic, partition=message.partition, offset=message.offset
        )
        started = time.perf_counter()
        output = self.stage.decide(message.value, source, key=message.key)
        seconds = time.perf_counter() - started
        await self.outputs.send(output, partial(self.delivered, event, stream, output, seconds))

    def delivered(
        self, event: Any, stream: Any, output: StageOutput, seconds: float, error: Any, _: Any
    ) -> None:
        """Delivery report: the broker answered for this record's output."""
        if error is not None:
            self.metrics.output_send_errors.inc()
            log.warning(
                "output not accepted by the broker (%s); sending it again",
                error.name(),
                extra=_where(event, output),
            )
            self.retry(event, stream, output, seconds)
            return
        self.acknowledge(event, stream, output, seconds)

    def acknowledge(self, event: Any, stream: Any, output: StageOutput, seconds: float) -> None:
        message = event.message
        # What `Stream.ack` does, without a task per record: mark the offset committable
        # and keep Faust's event sensors balanced.
        if event.ack():
            self.app.sensors.on_message_out(message.tp, message.offset, message)
        self.app.sensors.on_stream_event_out(message.tp, message.offset, stream, event, None)
        now = time.time()
        state = self.state
        if state.failing_since:
            state.failing_since.pop((message.partition, message.offset), None)
        state.last_progress = state.last_decision = now
        state.decided += 1
        state.routes[output.route] = state.routes.get(output.route, 0) + 1
        for finding in output.findings:
            state.findings[(finding.rule_id, finding.severity)] += 1
        if output.dead_letter_kind is not None:
            state.dead_letter_kinds[output.dead_letter_kind] += 1
        if message.timestamp:
            state.last_input_timestamp[message.partition] = message.timestamp
            self.metrics.end_to_end_seconds.observe(max(now - message.timestamp, 0.0))
        self.metrics.last_decision.set(now)
        self.metrics.record(output, seconds)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", output.route, extra=_where(event, output))

    def retry(self, event: Any, stream: Any, output: StageOutput | None, seconds: float) -> None:
        task = asyncio.ensure_future(self.redeliver(event, stream, output, seconds))
        self._retries.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._retries.discard)

    async def redeliver(
        self, event: Any, stream: Any, output: StageOutput | None, seconds: float
    ) -> None:
        """Send an output again until the broker takes it. The record stays uncommitted."""
        message = event.message
        self.state.failing_since.setdefault((message.partition, message.offset), time.time())
        backoff = 0.5
        while True:
            await asyncio.sleep(backoff)
            try:
                if output is None:
                    started = time.perf_counter()
                    output = self.stage.decide(
                        message.value,
                        KafkaSource(
                            topic=message.topic, partition=message.partition, offset=message.offset
                        ),
                        key=message.key,
                    )
                    seconds = time.perf_counter() - started
                await self.outputs.send_and_wait(output)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.metrics.output_send_errors.inc()
                log.warning(
                    "output still not accepted (%s); next try in %.0f s",
                    type(error).__name__,
                    min(backoff * 2, REDELIVERY_MAX_BACKOFF),
                    extra=_where(event, output),
                )
                backoff = min(backoff * 2, REDELIVERY_MAX_BACKOFF)
                continue
            self.acknowledge(event, stream, output, seconds)
            log.info("output accepted after a retry", extra=_where(event, output))
            return


def _where(event: Any, output: StageOutput | None = None) -> dict[str, object]:
    """Log context that identifies a record without any of its content."""
    message = event.message
    context: dict[str, object] = {
        "partition": message.partition,
        "offset": message.offset,
    }
    if output is not None:
        context["event_id"] = output.event_id
        context["claim_id"] = output.claim_id
        context["route"] = output.route
    return context


def read_lag(settings: Settings, partitions: set[int]) -> dict[int, int]:
    """End offset minus committed offset per partition, read from the broker itself.

    A short-lived client each time: it reads the group's commits without joining the
    group, and leaves nothing behind when the worker stops.
    """
    if not partitions:
        return {}
    topic = settings.input_topic
    consumer = Consumer(
        {**settings.librdkafka_config(), "group.id": settings.app_id, "enable.auto.commit": False}
    )
    try:
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
    finally:
        consumer.close()


def _broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]


def _credentials(settings: Settings) -> Any:
    if settings.security_protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        ssl_context = faust.SSLCredentials(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
        ).context
        if settings.ssl_certfile:
            ssl_context.load_cert_chain(
                str(settings.ssl_certfile),
                str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(ssl_context)
    return faust.SASLCredentials(
        username=settings.sasl_username,
        password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
        ssl_context=ssl_context,
        mechanism=settings.sasl_mechanism or "PLAIN",
    )


@dataclass
class WorkerApp:
    app: faust.App
    state: WorkerState
    metrics: StageMetrics
    registry: CollectorRegistry
    agent: ClaimsAgent


def create_app(
    settings: Settings, stage: Stage, registry: CollectorRegistry | None = None
) -> WorkerApp:
    """Build the Faust app around a stage. Nothing connects until the worker starts."""
    registry = registry or CollectorRegistry()
    app = faust.App(
        settings.app_id,
        broker=_broker_urls(settings.kafka_bootstrap),
        broker_credentials=_credentials(settings),
        store="memory://",
        # No tables: the plain assignor, no standby replicas, no leader topic, and no
        # topic creation (the stage's topics are created on purpose, beforehand).
        table_standby_replicas=0,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_commit_interval=settings.commit_interval,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        producer_acks=-1,
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        stream_wait_empty=True,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
    )
    # Faust's transport sensor, and ours, on one registry. A fixed prefix, so dashboards
    # need not know the app id: faust_messages_received_total.
    metrics_registry = registry
    sensor.install(app, metrics_registry, name_prefix="faust")
    metrics = StageMetrics(registry, stage.ruleset.version, stage.icd10cm.release)
    state = WorkerState()
    agent = ClaimsAgent(app, settings, stage, metrics, state)
    app.agent(agent.input, name="decide")(agent.process)

    def held_partitions() -> set[int]:
        try:
            return {
                tp.partition for tp in app.consumer.assignment() if tp.topic == settings.input_topic
            }
        except Exception:  # the consumer is not started yet
            return set()

    async def measure_lag() -> None:
        partitions = held_partitions()
        if partitions != set(state.lag):
            # A new assignment: the stall clock starts here, not at the last decision.
            state.assigned_at = time.time()
        try:
            lag = await asyncio.to_thread(read_lag, settings, partitions)
        except Exception as error:
            state.lag_error = type(error).__name__
            log.warning("could not read consumer lag (%s)", state.lag_error)
            return
        state.lag_error = None
        now = time.time()
        state.progress.append((now, state.decided))
        for partition in set(state.lag) - set(lag):
            metrics.consumer_lag.remove(str(partition))
            metrics.consumer_lag_seconds.remove(str(partition))
        state.lag = lag
        for partition, waiting in lag.items():
            metrics.consumer_lag.labels(str(partition)).set(waiting)
            behind = 0.0
            if waiting:
                newest = state.last_input_timestamp.get(partition) or state.assigned_at or now
                behind = max(now - newest, 0.0)
            metrics.consumer_lag_seconds.labels(str(partition)).set(behind)
            state.lag_seconds[partition] = behind
        for partition in set(state.lag_seconds) - set(lag):
            del state.lag_seconds[partition]

    app.timer(LAG_INTERVAL, name="consumer-lag")(measure_lag)
    summary = {"decided": 0}

    async def log_summary() -> None:
        done = state.decided - summary["decided"]
        summary["decided"] = state.decided
        if done:
            routes = ", ".join(f"{route} {n}" for route, n in sorted(state.routes.items()))
            log.info(
                "decided %d records in the last 10 s (totals: %s); %d waiting",
                done,
                routes,
                sum(state.lag.values()),
            )

    app.timer(10.0, name="summary-log")(log_summary)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> aiohttp_web.Response:
            return aiohttp_web.Response(
                body=generate_latest(metrics_registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )

    @app.page("/status")
    class Status(View):
        async def get(self, request: Request) -> Response:
            partitions = held_partitions()
            ok, reason = state.health(partitions, time.time())
            snapshot = StatusSnapshot(
                app_id=settings.app_id,
                version=__version__,
                ruleset_version=stage.ruleset.version,
                icd10cm=stage.icd10cm.release,
                healthy=ok,
                health_reason=reason,
                partitions=sorted(partitions),
                lag=dict(state.lag),
                lag_seconds=dict(state.lag_seconds),
                routes=dict(state.routes),
                rate_per_s=state.rate(),
                top_rules=sorted(
                    (
                        (rule_id, severity, count)
                        for (rule_id, severity), count in state.findings.items()
                        if severity == "error"
                    ),
                    key=lambda row: (-row[2], row[0]),
                )[:8],
                dead_letter_kinds=dict(state.dead_letter_kinds),
                started=state.started,
                last_decision=state.last_decision,
            )
            return self.html(render_status(snapshot))

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            ok, reason = state.health(held_partitions(), time.time())
            return self.json(
                {
                    "status": "ok" if ok else "unhealthy",
                    "reason": reason,
                    "partitions": sorted(held_partitions()),
                    "lag": {str(p): n for p, n in sorted(state.lag.items())},
                    "decided": state.decided,
                },
                status=200 if ok else 503,
            )

    return WorkerApp(app, state, metrics, registry, agent)


def run_worker(settings: Settings, stage_factory: Callable[[], Stage]) -> None:
    """Start the worker in this process; returns when it has stopped (SIGTERM, Ctrl-C)."""
    import mode.loop

    mode.loop.use("uvloop")
    stage = stage_factory()
    freeze_reference_data()
    worker_app = create_app(settings, stage)
    worker = faust.Worker(
        worker_app.app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=logging_config(settings.log_level, settings.log_format),
    )
    log.info(
        "worker %s starting: %s -> %s | %s | %s; metrics http://%s:%d/metrics",
        settings.app_id,
        settings.input_topic,
        settings.validated_topic,
        settings.rejected_topic,
        settings.dlq_topic,
        settings.web_host,
        settings.web_port,
    )
    try:
        worker.execute_from_commandline()
    finally:
        worker_app.agent.outputs.flush()
