"""Watching the stage: `claims-stage tail` prints arriving outputs readably."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import orjson
from confluent_kafka import KafkaError

from stream.kafka import clients
from stream.kafka.topics import existing_topics
from stream.settings import Settings


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
        if "file" in source:  # a claim `ingest` could not read
            where = f"{source.get('file')} line {source.get('line')}"
        else:
            where = "/".join(str(source.get(k, "?")) for k in ("topic", "partition", "offset"))
        return (
            f"dead letter  {error.get('kind')}  from {where}  key={record.get('raw_key')}\n"
            f"    {error.get('message')}"
        )
    review = set(record.get("review_rules") or ())
    route = "review" if review else record.get("outcome", "?")
    lines = [f"{route:9}  claim {record.get('claim_id')}  event {record.get('event_id')}"]
    lines.extend(
        f"    {finding.get('rule_id')} {finding.get('severity'):7} {finding.get('message')}"
        + ("  [review]" if finding.get("rule_id") in review else "")
        for finding in record.get("findings") or []
    )
    return "\n".join(lines)


def default_topics(settings: Settings) -> list[str]:
    """The stage's output topics; the review topic only where it exists (a deployment whose
    policies route nothing to review may not have created it)."""
    has_review = bool(existing_topics(settings, [settings.review_topic]))
    return [
        settings.validated_topic,
        *([settings.review_topic] if has_review else []),
        settings.rejected_topic,
        settings.dlq_topic,
    ]


class TailError(RuntimeError):
    """The broker refused or failed the subscription; the message says why."""


def tail(
    settings: Settings,
    topics: list[str],
    from_beginning: bool = False,
    limit: int | None = None,
    idle_timeout: float | None = None,
) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """Yield (topic, key, value) of arriving records; a throwaway group, nothing committed."""
    consumer = clients.consumer(
        settings,
        f"claims-stage-tail-{uuid.uuid4().hex[:8]}",
        **{"auto.offset.reset": "earliest" if from_beginning else "latest"},
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
                raise TailError(f"{error.name()}: {error.str()}")
            last = time.monotonic()
            seen += 1
            yield message.topic() or "", message.key(), message.value()
    finally:
        consumer.close()
