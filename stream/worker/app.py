"""The Faust app: wires the decision core, the Kafka clients and the operations pages.

It reads the input topic as raw bytes, calls the same `decide` as batch mode (in
`agent.ClaimsAgent`), and sends each output with the contract's key and headers
(`outputs.OutputProducer`). Nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.core.codes.calendar import coverage_warning
from stream.core.decision import Decider
from stream.kafka import clients
from stream.logs import logging_config
from stream.ops import sensor
from stream.ops.health import WorkerState
from stream.ops.metrics import StageMetrics
from stream.settings import Settings
from stream.worker import transport
from stream.worker.agent import ClaimsAgent
from stream.worker.fatal import FatalStop
from stream.worker.lag import LagMonitor
from stream.worker.outputs import OutputProducer
from stream.worker.transactions import Transactions
from stream.worker.transport.consumer import BatchConsumer
from stream.worker.transport.hooks import StageHooks, attach, hooks_of
from stream.worker.views import PageContext, install_pages

log = logging.getLogger("claims_stage.worker")

STREAM_BUFFER = {"aiokafka": 64, "librdkafka": 2}
"""Events Faust holds for the agent before it takes them (its default, 4,096, could hold
4 GiB): records on aiokafka, each at most the input topic's max.message.bytes (1 MiB by
default); fetched batches on librdkafka, whose bytes librdkafka's queue bounds."""


@dataclass
class WorkerApp:
    app: faust.App
    state: WorkerState
    metrics: StageMetrics
    registry: CollectorRegistry
    agent: ClaimsAgent


def broker_urls(settings: Settings) -> list[str]:
    """The bootstrap servers under the scheme of the transport the settings choose."""
    if settings.transport == "aiokafka":
        return clients.faust_broker_urls(settings)
    servers = settings.kafka_bootstrap.split(",")
    return [f"{transport.SCHEME}://{server.strip()}" for server in servers if server.strip()]


def faust_app(settings: Settings, web_enabled: bool = True) -> faust.App:
    """The Faust app: the librdkafka transport (or aiokafka's), no tables, no topic
    creation, the web server."""
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings),
        broker_credentials=clients.faust_credentials(settings),
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
        producer_max_request_size=clients.MAX_MESSAGE_BYTES,
        stream_wait_empty=True,
        # Records Faust holds for the agent before it takes them: a count, so few; a record
        # is at most the input topic's max.message.bytes (1 MiB by default).
        stream_buffer_maxsize=STREAM_BUFFER[settings.transport],
        web_enabled=web_enabled,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
    )
    attach(app, StageHooks(settings))
    return app


def create_app(
    settings: Settings,
    decider: Decider,
    registry: CollectorRegistry | None = None,
    fatal: FatalStop | None = None,
) -> WorkerApp:
    """Build the worker around a decider. Nothing connects until the worker starts."""
    registry = registry or CollectorRegistry()
    app = faust_app(settings)
    # Faust's transport sensor, and ours, on one registry. A fixed prefix, so dashboards
    # need not know the app id: faust_messages_received_total.
    sensor.install(app, registry, name_prefix="faust")
    state = WorkerState(session_timeout=settings.session_timeout)
    policies = decider.policies
    metrics = StageMetrics(
        registry,
        state.tally,
        policies.version,
        decider.code_set_version,
        decider.code_set_labels,
        code_sets_end=decider.code_sets_end,
    )
    input_topic = app.topic(
        settings.input_topic, key_serializer="raw", value_serializer="raw", allow_empty=True
    )
    fatal = fatal or FatalStop(settings)

    def poller_fault(error: BaseException) -> None:
        agent.fault("poller", error, {})

    outputs = OutputProducer(settings, fatal.error_callback, poller_fault)
    in_flight_bytes = settings.in_flight_mib * 1024 * 1024
    agent = ClaimsAgent(
        app,
        input_topic,
        decider,
        outputs,
        metrics,
        state,
        fatal,
        in_flight_bytes=in_flight_bytes,
        transactions=transactions(settings, app, outputs, metrics, fatal, in_flight_bytes),
    )
    app.agent(input_topic, name="decide")(agent.process)
    app.on_partitions_revoked.connect(agent.partitions_revoked)
    hooks = hooks_of(app)
    hooks.on_error = fatal.error_callback
    hooks.pending = agent.in_flight
    if agent.transactions is not None:
        hooks.before_start = agent.transactions.start

    def held_partitions() -> set[int]:
        try:
            assignment = app.consumer.assignment()
        except Exception:  # the consumer is not started yet
            return set()
        return {tp.partition for tp in assignment if tp.topic == settings.input_topic}

    lag = LagMonitor(settings, held_partitions, state, metrics)
    app.timer(settings.lag_interval, name="consumer-lag")(lag.measure)
    app.on_before_shutdown.connect(lag.stop)  # the lag reader's one client, closed
    summary = SummaryLog(state, settings.summary_interval)
    app.timer(settings.summary_interval, name="summary-log")(summary.write)
    install_pages(
        app,
        PageContext(
            settings.app_id,
            policies.version,
            decider.code_set_version,
            state,
            held_partitions,
            registry,
            decider.code_set_labels,
            review_route=policies.routes_to_review,
            oldest_pending=agent.oldest_pending,
            code_sets_end=decider.code_sets_end,
        ),
    )
    return WorkerApp(app, state, metrics, registry, agent)


def transactions(
    settings: Settings,
    app: faust.App,
    outputs: OutputProducer,
    metrics: StageMetrics,
    fatal: FatalStop,
    in_flight_bytes: int,
) -> Transactions | None:
    """Exactly-once mode: the agent's transactions on the (transactional) output producer,
    with the input consumer's group metadata. None in at-least-once mode."""
    if not settings.exactly_once:
        return None

    def group_metadata() -> object:
        return cast(BatchConsumer, app.consumer).group_metadata()

    def rewind(offsets: dict[TP, int]) -> None:
        cast(BatchConsumer, app.consumer).rewind(offsets)

    return Transactions(
        outputs.producer,
        outputs.topics,
        group_metadata,
        metrics,
        fatal,
        max_bytes=in_flight_bytes // 2,
        timeout=settings.transaction_timeout,
        rewind=rewind,
    )


class SummaryLog:
    """One log line every few seconds while records are decided: counts, never content."""

    def __init__(self, state: WorkerState, interval: float) -> None:
        self.state = state
        self.interval = interval
        self.logged = 0

    async def write(self) -> None:
        tally = self.state.tally
        done, self.logged = tally.records - self.logged, tally.records
        if done:
            routes = ", ".join(f"{route} {n}" for route, n in sorted(tally.routes.items()))
            log.info(
                "decided %d records in the last %.0f s (totals: %s); %d waiting",
                done,
                self.interval,
                routes,
                sum(self.state.lag.values()),
            )


def run_worker(settings: Settings, decider_factory: Callable[[], Decider]) -> None:
    """Start the worker in this process; returns when it has stopped (SIGTERM, Ctrl-C)."""
    import mode.loop

    mode.loop.use("uvloop")
    decider = decider_factory()
    fatal = FatalStop(settings)
    worker_app = create_app(settings, decider, fatal=fatal)
    worker = faust.Worker(
        worker_app.app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=logging_config(settings.log_level, settings.log_format),
    )
    outputs = [settings.validated_topic, settings.rejected_topic, settings.dlq_topic]
    if decider.policies.routes_to_review:
        outputs.insert(1, settings.review_topic)
    log.info(
        "worker %s starting: %s -> %s; ruleset %s (%d payer policies); metrics http://%s:%d/metrics",
        settings.app_id,
        settings.input_topic,
        " | ".join(outputs),
        decider.policies.version,
        len(decider.policies.payers),
        settings.web_host,
        settings.web_port,
    )
    warning = coverage_warning(decider.code_sets_end, dt.date.today())
    if warning is not None:
        log.warning(warning)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        # Faust exits 0 after a stop, 1 after a crash; a refusal that retrying cannot cure
        # (credentials, TLS, ACLs) exits 2, like the same refusal found before the start.
        if fatal.reason is not None or fatal.crashed(worker.crash_reason):
            raise SystemExit(fatal.status) from None
        raise
    finally:
        worker_app.agent.outputs.flush(timeout=5.0 if fatal.reason else 30.0)
