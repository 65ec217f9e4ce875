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
