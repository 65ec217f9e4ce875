"""Fakes of what the worker's parts talk to, so they are tested without a broker.

- `FakeProducer` stands for librdkafka's producer (two: the batching one, and the one that
  sends a record alone): `produce` queues, the test answers each
  output (stored, or refused with a `KafkaError`) in any order, and `poll` serves the
  answers' delivery reports as librdkafka does (a callback that raises ends that poll; the
  reports after it wait for the next one).
- `FakeEvent` and `FakeMessage` stand for Faust's event and message of one input record;
  `acked` records each acknowledgement in the order it happened.
- `WorkerStage` is a `ClaimsAgent` wired to these, with a real decider, real metrics on
  their own registry, real health state and a `FatalStop` that records instead of signalling.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.core.decision import Decider
from stream.ops.health import WorkerState
from stream.ops.metrics import StageMetrics
from stream.settings import Settings
from stream.worker.agent import ClaimsAgent
from stream.worker.fatal import FatalStop
from stream.worker.outputs import OutputProducer
from stream.worker.transactions import Transactions
from stream.worker.transport.records import InputRecord, RecordBatch
from tests.claims import encode, encounter

INPUT = "encounters"


@dataclass
class Produced:
    """One output handed to the fake producer."""

    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    on_delivery: Any


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[Produced] = []
        self.stored: list[Produced] = []
        self._answers: list[tuple[Produced, KafkaError | None]] = []
        self.full = False
        self.refuse_at_once: KafkaError | None = None
        self.poll_raises: BaseException | None = None

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        if self.full:
            raise BufferError("Local: Queue full")
        if self.refuse_at_once is not None:
            raise KafkaException(self.refuse_at_once)
        self.sent.append(Produced(topic, value or b"", key, list(headers or []), on_delivery))

    def answer(self, produced: Produced, error: KafkaError | None = None) -> None:
        """The broker's answer for one output, served at the next poll."""
        self._answers.append((produced, error))

    def answer_all(self, error: KafkaError | None = None, reverse: bool = False) -> None:
        waiting = [p for p in self.sent if p not in self.stored and not self._answered(p)]
        for produced in reversed(waiting) if reverse else waiting:
            self.answer(produced, error)

    def _answered(self, produced: Produced) -> bool:
        return any(p is produced for p, _ in self._answers)

    def poll(self, timeout: float = 0) -> int:
        if self.poll_raises is not None:
            fault, self.poll_raises = self.poll_raises, None
            raise fault
        served = 0
        while self._answers:
            produced, error = self._answers.pop(0)
            if error is None:
                self.stored.append(produced)
            served += 1
            produced.on_delivery(error, SimpleNamespace(topic=lambda p=produced: p.topic))
        return served

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


@dataclass
class FakeMessage:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: float | None = 1_800_000_000.0

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


class FakeEvent:
    def __init__(self, message: FakeMessage, acked: list[tuple[int, int]]) -> None:
        self.message = message
        self._acked = acked
        self.is_acked = False
        self.ack_raises: BaseException | None = None

    def ack(self) -> bool:
        if self.ack_raises is not None:
            raise self.ack_raises
        first = not self.is_acked
        self.is_acked = True
        self._acked.append((self.message.partition, self.message.offset))
        return first


class FakeSensors:
    def __init__(self) -> None:
        self.out = 0

    def on_message_out(self, *_: Any) -> None:
        self.out += 1

    def on_stream_event_out(self, *_: Any) -> None:
        pass


def claim(n: int) -> bytes:
    """A contract-valid encounter event with its own identifiers."""
    return encode(
        encounter(["C34.90", "C79.51"], ["77014"], event_id=f"evt-{n}", claim_id=f"CLM-{n}")
    )


@dataclass
class WorkerStage:
    """A ClaimsAgent on fakes; `feed` hands it input records as Faust would."""

    decider: Decider
    in_flight_bytes: int = 64 * 1024 * 1024
    settings: Settings = field(default_factory=Settings)
    producer: FakeProducer = field(default_factory=FakeProducer)
    solo: FakeProducer = field(default_factory=FakeProducer)
    """The producer of records sent in a batch of their own."""
    acked: list[tuple[int, int]] = field(default_factory=list)
    stops: list[str] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = WorkerState()
        self.registry = CollectorRegistry()
        self.metrics = StageMetrics(self.registry, self.state.tally, "test", "test")
        self.fatal = FatalStop(
            self.settings, terminate=lambda: self.stops.append("stop"), grace=None
        )
        self.sensors = FakeSensors()
        app: Any = SimpleNamespace(sensors=self.sensors)

        def poller_fault(error: BaseException) -> None:
            self.agent.fault("poller", error, {})

        self.outputs = OutputProducer(
            self.settings,
            self.fatal.error_callback,
            poller_fault,
            producer=self.producer,
            solo=self.solo,
        )
        self.agent = ClaimsAgent(
            app,
            None,
            self.decider,
            self.outputs,
            self.metrics,
            self.state,
            self.fatal,
            in_flight_bytes=self.in_flight_bytes,
        )

    def event(self, value: bytes, partition: int = 0) -> FakeEvent:
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        return FakeEvent(FakeMessage(INPUT, partition, offset, value), self.acked)

    async def feed(self, *events: FakeEvent) -> None:
        for event in events:
            await self.agent.handle(event, None)

    def run(self, *events: FakeEvent) -> list[FakeEvent]:
        asyncio.run(self.feed(*events))
        return list(events)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


# --- exactly-once ---------------------------------------------------------------------------


class FakeTransactionalProducer(FakeProducer):
    """librdkafka's transactional producer: outputs are produced into the open transaction;
    `commit_transaction` delivers them (refusals set in `refuse`, by the output's position
    in `sent`) and makes them, with the offsets sent, `committed`; an abort drops them.
    `commit_errors` are raised by the next commits, one each; `abort_errors` by the next
    aborts."""

    def __init__(self) -> None:
        super().__init__()
        self.initialised = 0
        self.open: list[Produced] | None = None
        self.committed: list[Produced] = []
        self.aborted: list[Produced] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self._open_offsets: dict[tuple[str, int], int] = {}
        self.refuse: dict[int, KafkaError] = {}
        self.commit_errors: list[KafkaError] = []
        self.abort_errors: list[KafkaError] = []
        self.flushes = 0
        self.metadata: list[Any] = []

    def init_transactions(self, timeout: float) -> None:
        self.initialised += 1

    def begin_transaction(self) -> None:
        if self.open is not None:
            raise KafkaException(KafkaError(KafkaError._STATE, "a transaction is open"))
        self.open, self._open_offsets = [], {}

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        if self.open is None:
            raise KafkaException(KafkaError(KafkaError._STATE, "no transaction is open"))
        super().produce(topic, *args, **kwargs)
        self.open.append(self.sent[-1])

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.metadata.append(metadata)
        for p in offsets:
            self._open_offsets[(p.topic, p.partition)] = p.offset

    def _deliver(self) -> bool:
        """Delivery reports of the open transaction's outputs; False if one was refused."""
        stored = True
        for produced in self.open or []:
            error = self.refuse.pop(self.sent.index(produced), None)
            produced.on_delivery(error, None)
            stored = stored and error is None
        return stored

    def commit_transaction(self, timeout: float) -> None:
        if not self._deliver():
            raise KafkaException(
                KafkaError(
                    KafkaError._INCONSISTENT, "an output was refused", txn_requires_abort=True
                )
            )
        if self.commit_errors:
            raise KafkaException(self.commit_errors.pop(0))
        self.committed.extend(self.open or [])
        self.offsets.update(self._open_offsets)
        self.open = None

    def abort_transaction(self, timeout: float) -> None:
        if self.abort_errors:
            raise KafkaException(self.abort_errors.pop(0))
        self.aborted.extend(self.open or [])
        self.open = None

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        return 0


@dataclass
class TransactionalStage:
    """A ClaimsAgent in exactly-once mode on a fake transactional producer; `batch` makes a
    fetched batch whose `current` the test may turn off after some outputs."""

    decider: Decider
    producer: FakeTransactionalProducer = field(default_factory=FakeTransactionalProducer)
    stops: list[str] = field(default_factory=list)
    acked: list[InputRecord] = field(default_factory=list)
    revoke_after: int | None = None
    """The batch stops being current once this many outputs were produced (a rebalance)."""
    rewound: list[dict[TP, int]] = field(default_factory=list)
    """The offsets the consumer was asked to fetch again from, in order."""

    def __post_init__(self) -> None:
        self.settings = Settings(processing_guarantee="exactly_once", instance_id="test")
        self.state = WorkerState()
        self.registry = CollectorRegistry()
        self.metrics = StageMetrics(self.registry, self.state.tally, "test", "test")
        self.fatal = FatalStop(
            self.settings, terminate=lambda: self.stops.append("stop"), grace=None
        )
        self.outputs = OutputProducer(self.settings, producer=self.producer)
        self.transactions = Transactions(
            self.producer,
            self.outputs.topics,
            lambda: "group-metadata",
            self.metrics,
            self.fatal,
            max_bytes=16 * 1024 * 1024,
            timeout=5.0,
            rewind=self.rewound.append,
        )
        app: Any = SimpleNamespace(sensors=FakeSensors())
        self.agent = ClaimsAgent(
            app,
            None,
            self.decider,
            self.outputs,
            self.metrics,
            self.state,
            self.fatal,
            transactions=self.transactions,
        )

    def batch(self, count: int, partitions: int = 2, first: int = 0) -> RecordBatch:
        def ack(record: InputRecord) -> bool:
            self.acked.append(record)
            return True

        records = [
            InputRecord(TP(INPUT, n % partitions), n // partitions, None, claim(n), None, ack)
            for n in range(first, first + count)
        ]

        def current(generation: int) -> bool:
            return self.revoke_after is None or len(self.producer.sent) < self.revoke_after

        return RecordBatch(records, 1, current)

    def run(self, batch: RecordBatch) -> None:
        asyncio.run(self.agent.handle_batch(batch))

    def committed_ids(self) -> list[str]:
        return [produced_event_id(p) for p in self.producer.committed]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        return 0.0 if value is None else value


def produced_event_id(produced: Produced) -> str:
    return dict(produced.headers)["event_id"].decode()
