"""The stage on a real broker: every record out exactly once, metrics true, crashes lossless."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from stream.core.codes.releases import LoadedRelease, parse_order_file, read_order_file
from stream.core.codes.store import CodeSetStore
from stream.core.decision import Decider
from stream.core.rules import RULESET_VERSION
from stream.kafka.send import key_of, send_lines
from tests.order_files import release_of
from tests.stage_kafka import (
    EXAMPLES,
    ROOT,
    Record,
    StageDeployment,
    bulk_records,
    covers,
    decided,
    example_lines,
    identity,
    read_outputs,
    scrape,
    wait_for,
)

pytestmark = pytest.mark.integration


def _input_line(record: Record, lines: dict[bytes, int], by_event: dict[str, int]) -> int:
    """Which input line an output record answers."""
    document = record.document
    if "error" in document:
        raw = str(document["raw_value"])
        value = raw.encode() if document["raw_value_encoding"] == "utf-8" else base64.b64decode(raw)
        return lines[value]
    encounter = document["encounter"]
    assert isinstance(encounter, dict)
    return by_event[str(encounter["event_id"])]


def _store_with_fy2027(decider: Decider, folder: Path) -> Path:
    """A code-set store holding FY2027 as a CMS order file lists it (written from the
    built-in master): the worker must read it, and judge exactly as with the master."""
    path = release_of(decider.icd10cm.calendar, dt.date(2026, 10, 1)).write(
        folder / "icd10cm_order_2027.txt"
    )
    order = read_order_file(path)
    release = LoadedRelease(
        dt.date(2026, 10, 1), order.source, order.sha256, "t", parse_order_file(order.data)
    )
    CodeSetStore(folder / "code-sets").add(release)
    return folder / "code-sets"


def test_the_example_stream_flows_through_the_stage(
    deployment: StageDeployment, decider: Decider, tmp_path: Path
) -> None:
    deployment.create_topics()
    store = _store_with_fy2027(decider, tmp_path)
    worker, port = deployment.start_worker(CLAIMS_CODE_SETS_DIR=str(store))
    deployment.wait_healthy(port)

    lines = example_lines()
    expected = [
        json.loads(line) for line in (EXAMPLES.parent / "expected.jsonl").read_text().splitlines()
    ]
    report = send_lines(deployment.settings, lines)
    assert report.delivered == len(lines)

    records = read_outputs(deployment, len(lines))
    settings = deployment.settings
    topic_of_route = {
        "validated": settings.validated_topic,
        "rejected": settings.rejected_topic,
        "dead_letter": settings.dlq_topic,
    }
    index = {line: n for n, line in enumerate(lines)}
    by_event = {}
    for n, line in enumerate(lines):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            by_event[json.loads(line)["event_id"]] = n

    answered = Counter(_input_line(r, index, by_event) for r in records)
    assert len(records) == len(lines), deployment.logs()
    assert set(answered) == set(range(len(lines)))
    assert set(answered.values()) == {1}  # every input exactly once

    for record in records:
        n = _input_line(record, index, by_event)
        assert record.topic == topic_of_route[expected[n]["route"]], (n, record.document)
        document = record.document
        if record.topic == settings.dlq_topic:
            assert record.key == key_of(lines[n])  # the input's key, unchanged
            error = document["error"]
            assert isinstance(error, dict)
            assert error["kind"] == expected[n]["dead_letter_kind"]
            assert record.headers["error_kind"] == error["kind"].encode()
            assert record.headers["source_topic"] == settings.input_topic.encode()
            source = document["source"]
            assert isinstance(source, dict)
            assert record.headers["source_partition"] == str(source["partition"]).encode()
            assert record.headers["source_offset"] == str(source["offset"]).encode()
        else:
            assert record.key == str(document["claim_id"]).encode()
            assert record.headers["event_id"] == str(document["event_id"]).encode()
            assert record.headers["outcome"] == str(document["outcome"]).encode()
            assert record.headers["ruleset_version"] == RULESET_VERSION.encode()
            findings = document["findings"]
            assert isinstance(findings, list)
            assert {f["rule_id"]: f["severity"] for f in findings} == expected[n]["findings"]
            # the worker read the store at start: FY2027's claims were judged by the file
            code_sets = document["code_sets"]
            assert isinstance(code_sets, dict)
            loaded = code_sets["icd10cm_source"].startswith("loaded 2026-10-01 sha256:")
            assert loaded == (expected[n]["code_set"] == "FY2027"), (n, code_sets)

    routes = Counter(e["route"] for e in expected)
    kinds = Counter(e["dead_letter_kind"] for e in expected if e["dead_letter_kind"])
    findings = Counter(
        (rule, severity) for e in expected for rule, severity in e["findings"].items()
    )

    def counted() -> bool:
        metrics = scrape(port)
        return (
            metrics.get('claims_decisions_total{outcome="validated"}') == routes["validated"]
            and metrics.get('claims_decisions_total{outcome="rejected"}') == routes["rejected"]
            and metrics.get("claims_end_to_end_seconds_count") == len(lines)
        )

    wait_for(counted, 30, "the metrics to count every record")
    metrics = scrape(port)
    for kind, count in kinds.items():
        assert metrics[f'claims_dead_letters_total{{kind="{kind}"}}'] == count
    assert sum(v for k, v in metrics.items() if k.startswith("claims_dead_letters_total")) == sum(
        kinds.values()
    )
    for (rule, severity), count in findings.items():
        series = f'claims_findings_total{{rule_id="{rule}",severity="{severity}"}}'
        assert metrics[series] == count, series
    assert metrics["claims_decision_seconds_count"] == len(lines)
    assert metrics["claims_last_decision_timestamp_seconds"] > time.time() - 120
    assert any(k.startswith("claims_stage_info{") for k in metrics)
    assert metrics["faust_messages_received_total"] == len(lines)  # Faust's sensor
    # decisions per ICD-10-CM code-set year: every supported year, from the start
    years = Counter(e["code_set"] for e in expected if e["code_set"])
    by_year = {k: v for k, v in metrics.items() if k.startswith("claims_code_set_decisions_total{")}
    assert by_year == {
        f'claims_code_set_decisions_total{{fiscal_year="{label}"}}': float(years[label])
        for label in ("FY2023", "FY2024", "FY2025", "FY2026", "FY2027")
    }
    nearest = sum(1 for e in expected if "MET-042" in (e["findings"] or {}))
    assert metrics["claims_nearest_code_set_decisions_total"] == nearest > 0
    last_day = dt.datetime.fromtimestamp(
        metrics["claims_code_sets_last_date_timestamp_seconds"], dt.UTC
    )
    assert last_day == dt.datetime(2027, 9, 30, tzinfo=dt.UTC)

    def drained() -> bool:
        lag = {k: v for k, v in scrape(port).items() if k.startswith("claims_consumer_lag{")}
        return len(lag) == deployment.partitions and sum(lag.values()) == 0

    wait_for(drained, 30, "the consumer lag to reach 0 on every partition")
    assert deployment.committed() == len(lines)
    assert deployment.wait_healthy(port)["status"] == "ok"
    assert worker.poll() is None


RECORDS = 20_000


def _worker_a_quarter_through(
    deployment: StageDeployment,
) -> tuple[subprocess.Popen[bytes], set[bytes]]:
    """A worker with RECORDS sent to it, once it has decided a quarter of them."""
    deployment.create_topics()
    worker, port = deployment.start_worker()
    deployment.wait_healthy(port)
    records, identities = bulk_records(RECORDS)
    assert send_lines(deployment.settings, records).delivered == RECORDS
    wait_for(lambda: decided(port) >= RECORDS // 4, 120, "a quarter of the stream decided")
    return worker, identities


def test_sigkill_mid_stream_loses_nothing(deployment: StageDeployment) -> None:
    # The killed worker leaves no goodbye: the group waits out its session before the new
    # worker gets the partitions (30 s by default; 10 s is as valid and sooner).
    deployment.worker_env["CLAIMS_SESSION_TIMEOUT"] = "10"
    first, identities = _worker_a_quarter_through(deployment)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    committed = deployment.committed()
    stored_before_restart = len(read_outputs(deployment, 0, timeout=5))
    assert committed <= stored_before_restart  # never committed past an output not stored

    second, _ = deployment.start_worker()
    outputs = read_outputs(
        deployment,
        RECORDS,
        timeout=300,
        until=covers(identities),
    )
    seen = Counter(identity(r) for r in outputs)
    lost = identities - set(seen)
    duplicates = sum(seen.values()) - len(seen)
    print(
        f"\nSIGKILL after {stored_before_restart} of {RECORDS} outputs stored, {committed} "
        f"inputs committed: {len(outputs)} outputs, {len(lost)} lost, {duplicates} duplicates"
    )
    assert not lost, f"{len(lost)} records lost\n{deployment.logs()}"
    assert set(seen) == identities
    # The restart redoes exactly what was stored but not yet committed.
    assert duplicates == stored_before_restart - committed
    assert second.poll() is None


def test_sigterm_stops_cleanly_with_offsets_committed(deployment: StageDeployment) -> None:
    first, identities = _worker_a_quarter_through(deployment)
    asked = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0, deployment.logs()
    stop_seconds = time.monotonic() - asked

    committed = deployment.committed()
    produced = len(read_outputs(deployment, 0, timeout=5))
    assert committed <= produced  # never committed past an output not stored
    reprocessed = produced - committed

    deployment.start_worker()
    outputs = read_outputs(
        deployment,
        RECORDS,
        timeout=300,
        until=covers(identities),
    )
    seen = Counter(identity(r) for r in outputs)
    duplicates = sum(seen.values()) - len(seen)
    print(
        f"\nSIGTERM stop took {stop_seconds:.1f} s after {produced} outputs; committed "
        f"{committed}; reprocessed on restart {duplicates} (expected {reprocessed})"
    )
    assert set(seen) == identities
    assert duplicates == reprocessed


def test_the_worker_refuses_to_start_without_its_topics(deployment: StageDeployment) -> None:
    settings = deployment.settings
    result = subprocess.run(
        [sys.executable, "-m", "stream", "worker"],
        env=deployment.env(0),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(ROOT),
    )
    assert result.returncode == 2
    assert "missing topics" in result.stderr
    assert "claims-stage topics create" in result.stderr
    topics = AdminClient({"bootstrap.servers": deployment.bootstrap}).list_topics(timeout=10)
    assert settings.input_topic not in topics.topics  # nothing was auto-created
