"""Feeding the stage and watching it: `claims-stage send` and `claims-stage tail`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer

from stream.settings import Settings

# Java clients and aiokafka (the worker) place keys with murmur2; librdkafka's default
# differs, so a claim sent here would land in another partition than the same claim sent
# by a Java producer. Same partitioner, same partition.
PARTITIONER = "murmur2_random"


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


def producer(settings: Settings, **overrides: Any) -> Producer:
    return Producer(
        {
            **settings.librdkafka_config(),
            "partitioner": PARTITIONER,
            "linger.ms": 5,
            "enable.idempotence": True,
            "message.max.bytes": 16 * 1024 * 1024,
            **overrides,
        }
    )


def send_lines(
    settings: Settings,
    lines: Iterable[bytes],
    topic: str | None = None,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> SendReport:
    """Produce each line as it is (a bad line too: it exercises the dead-letter path)."""
    report = SendReport()
    client = producer(settings)
    target = topic or settings.input_topic

    def on_delivery(error: KafkaError | None, _: Any) -> None:
        if error is None:
            report.delivered += 1
        else:
            report.failed += 1

    started = time.perf_counter()
    for line in lines:
        if rate:
            # Pace against the clock, not per record, so the average rate holds.
            ahead = started + report.sent / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        while True:
            try:
                client.produce(target, value=line, key=key_of(line), on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                client.poll(0.1)
        client.poll(0)
        report.sent += 1
        if progress is not None:
            progress(1)
    client.flush()
    report.seconds = time.perf_counter() - started
    return report


def describe(value: bytes | None) -> str:
    """One output record, readably: claim, outcome, findings; or a dead letter's error."""
    if value is None:
        return "(empty record)"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"(not JSON: {len(value)} bytes)"
    if not isinstance(record, dict):
        return f"(unexpected JSON: {type(record).__name__})"
    if "error" in record:
        error = record.get("error") or {}
        source = record.get("source") or {}
        where = "/".join(str(source.get(k, "?")) for k in ("topic", "partition", "offset"))
        return (
            f"dead letter  {error.get('kind')}  from {where}  key={record.get('raw_key')}\n"
            f"    {error.get('message')}"
        )
    lines = [
        f"{record.get('outcome', '?'):9}  claim {record.get('claim_id')}  "
        f"event {record.get('event_id')}"
    ]
    lines.extend(
        f"    {finding.get('rule_id')} {finding.get('severity'):7} {finding.get('message')}"
        for finding in record.get("findings") or []
    )
    return "\n".join(lines)


def tail(
    settings: Settings,
    topics: list[str],
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """Yield (topic, key, value) of arriving records; a throwaway group, nothing committed."""
    consumer = Consumer(
        {
            **settings.librdkafka_config(),
            "group.id": f"claims-stage-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    seen = 0
    last = time.monotonic()
    try:
        while limit is None or seen < limit:
            message = consumer.poll(0.5)
            if message is None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(str(error))
            last = time.monotonic()
            seen += 1
            yield message.topic() or "", message.key(), message.value()
    finally:
        consumer.close()
