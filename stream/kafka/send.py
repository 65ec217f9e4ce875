"""Feeding the stage: `claims-stage send` produces lines to the input topic, and
`claims-stage ingest` produces the claims of an 837 or a FHIR Bundle."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from confluent_kafka import KafkaError

from stream.kafka import clients
from stream.settings import Settings

T = TypeVar("T")


def key_of(line: bytes) -> bytes | None:
    """The record key for an input line: its `claim_id` when it has one."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    claim_id = document.get("claim_id") if isinstance(document, dict) else None
    return claim_id.encode() if isinstance(claim_id, str) and claim_id else None


@dataclass
class SendReport:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0


def send_lines(
    settings: Settings,
    lines: Iterable[bytes],
    topic: str | None = None,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> SendReport:
    """Produce each line as it is (a bad line too: it exercises the dead-letter path), key =
    its claim_id, at `rate` records per second when given."""
    target = topic or settings.input_topic
    records = (Outgoing(target, key_of(line), line) for line in paced(lines, rate))
    return send_records(settings, records, (lambda _: progress(1)) if progress else None)


def paced(items: Iterable[T], rate: float | None) -> Iterator[T]:
    """The items, no faster than `rate` a second on average (paced against the clock, not
    per item, so the average holds); as fast as they come without a rate."""
    if not rate:
        yield from items
        return
    started = time.perf_counter()
    for count, item in enumerate(items):
        ahead = started + count / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
        yield item


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to produce: where to, key, value and headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


def send_records(
    settings: Settings,
    records: Iterable[Outgoing],
    progress: Callable[[Outgoing], None] | None = None,
) -> SendReport:
    """Produce records to their topics, waiting for every delivery before returning."""
    report = SendReport()
    client = clients.producer(settings)

    def on_delivery(error: KafkaError | None, _: Any) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1

    started = time.perf_counter()
    for record in records:
        while True:
            try:
                client.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain
                client.poll(0.1)
        client.poll(0)
        report.sent += 1
        if progress is not None:
            progress(record)
    client.flush()
    report.seconds = time.perf_counter() - started
    return report
