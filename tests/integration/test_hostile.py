"""Hostile input on a real broker: every record still gets exactly one output.

- A small flood: ordinary claims mixed with records of about 880 KB whose diagnosis codes
  are long garbage (the full-size flood is `make bench-hostile`).
- Decisions larger than their topic takes (the output topics configured far below the
  1 MiB the stage expects): each goes to the dead-letter topic as `decision_too_large`
  with its input, instead of being sent again forever.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from bench.flood import flood_records
from bench.stage import preload
from stream.kafka import clients
from tests.stage_kafka import Record, StageDeployment, example_lines, read_outputs

pytestmark = pytest.mark.integration


def answered(records: list[Record]) -> Counter[tuple[int, int]]:
    """Outputs counted by the input record (partition, offset) each answers."""
    return Counter((r.source["partition"], r.source["offset"]) for r in records)


def kept_input(record: Record) -> bytes:
    document = record.document
    assert document["raw_value_encoding"] == "utf-8"
    return str(document["raw_value"]).encode()


def test_a_flood_of_hostile_records_gets_one_output_each(deployment: StageDeployment) -> None:
    deployment.create_topics()
    worker, port = deployment.start_worker()
    deployment.wait_healthy(port)
    records = flood_records(ordinary=60, hostile=6, size_bytes=880_000)
    stamps = preload(deployment.settings, records)
    assert len(stamps) == len(records)

    outputs = read_outputs(
        deployment, len(records), timeout=120, until=lambda seen: set(answered(seen)) >= set(stamps)
    )
    counts = answered(outputs)
    assert set(counts) == set(stamps), deployment.logs()
    assert set(counts.values()) == {1}  # exactly one output each
    hostile = [r for r in outputs if b'"hostile-' in r.value]
    assert len(hostile) == 6
    for record in hostile:  # a dead letter that keeps the whole input
        assert record.topic == deployment.settings.dlq_topic
        assert kept_input(record) in records
    assert worker.poll() is None
    assert deployment.wait_healthy(port)["status"] == "ok"


def shrink(deployment: StageDeployment, topics: list[str], max_bytes: int) -> None:
    """Configure topics to take records of at most `max_bytes` (the broker's batch size)."""
    admin = clients.admin(deployment.settings)
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes",
                    str(max_bytes),
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for topic in topics
    ]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(timeout=30)


def test_decisions_too_large_for_their_topic_go_to_the_dead_letter_topic(
    deployment: StageDeployment,
) -> None:
    deployment.create_topics()
    settings = deployment.settings
    decisions = [settings.validated_topic, settings.review_topic, settings.rejected_topic]
    shrink(deployment, decisions, 256)  # no decision fits; dead letters still do
    worker, port = deployment.start_worker()
    deployment.wait_healthy(port)
    lines = example_lines()[:40]
    stamps = preload(settings, lines)

    outputs = read_outputs(
        deployment, len(lines), timeout=120, until=lambda seen: set(answered(seen)) >= set(stamps)
    )
    counts = answered(outputs)
    assert set(counts) == set(stamps), deployment.logs()
    assert set(counts.values()) == {1}
    assert {r.topic for r in outputs} == {settings.dlq_topic}
    kinds = Counter(orjson.loads(r.value)["error"]["kind"] for r in outputs)
    assert kinds["decision_too_large"] >= 1, kinds
    for record in outputs:
        document = record.document
        error = document["error"]
        assert isinstance(error, dict)
        if error["kind"] == "decision_too_large":
            assert kept_input(record) in lines
            assert repr(settings.validated_topic) in str(error["message"]) or repr(
                settings.rejected_topic
            ) in str(error["message"])
    assert worker.poll() is None  # no refusal stopped it, nothing is retried forever
    assert deployment.committed() == len(lines)
