"""The stage on a secured broker: SASL_SSL only, SCRAM-SHA-512 users, ACLs.

One secured broker for the module (`claims-stage broker start --secure`'s cluster, on free
ports): its own CA, the users stage, producer and admin, and the settings files it writes for
each. Each test deploys its own topics and grants the stage's ACLs for them, as the admin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.kafka import clients
from stream.kafka.acls import Grant, grant, revoke
from stream.kafka.topics import stage_topics
from tests.stage_kafka import (
    ROOT,
    SecureKafka,
    StageDeployment,
    example_lines,
    free_port,
    read_outputs,
    scrape,
    settings_from,
    wait_for,
)

pytestmark = pytest.mark.integration

FAIL_WITHIN = 120.0
"""A worker refused by the cluster exits with status 2 rather than retrying forever: past this
many seconds it is taken as retrying forever (a bound on "never", not a speed target; the
time it took is printed)."""


@pytest.fixture
def secured(secure_kafka: SecureKafka, tmp_path: Path) -> Iterator[StageDeployment]:
    """Topics created and ACLs granted by the admin (the transactional ids' too, so a
    worker may run exactly-once); workers run as the stage's user."""
    stage = StageDeployment(
        bootstrap=secure_kafka.bootstrap,
        workdir=tmp_path,
        worker_env=secure_kafka.env("stage"),
        admin_env={**secure_kafka.env("admin"), "CLAIMS_PROCESSING_GUARANTEE": "exactly_once"},
    )
    stage.create_topics()
    stage.grant_acls()
    yield stage
    stage.stop_all()


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}


def _claims_stage(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str, float]:
    """Run a command to its end: (exit status, stdout and stderr, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _as(secure_kafka: SecureKafka, deployment: StageDeployment, user: str) -> dict[str, str]:
    """The environment of a command run by `user` on this deployment's topics."""
    return _base_env() | deployment.stage_env() | secure_kafka.env(user)


def test_the_stage_processes_the_example_stream_with_its_own_user(
    secure_kafka: SecureKafka, secured: StageDeployment
) -> None:
    settings = secured.settings
    # The files `broker start --secure` writes: owner-only, and the CA a client trusts.
    home = secure_kafka.cluster.home
    for user in ("stage", "producer", "admin"):
        for suffix in (".env", ".properties"):
            assert (home / f"{user}{suffix}").stat().st_mode & 0o077 == 0
    assert secure_kafka.env("stage")["CLAIMS_SECURITY_PROTOCOL"] == "SASL_SSL"

    # Exactly-once on the secured cluster: the transactional id's ACL is the prefixed one.
    worker, port = secured.start_worker(CLAIMS_PROCESSING_GUARANTEE="exactly_once")
    secured.wait_healthy(port)
    status, output, _ = _claims_stage(
        _as(secure_kafka, secured, "producer"),
        "send",
        str(ROOT / "schemas/examples/encounters.jsonl"),
    )
    lines = example_lines()
    assert status == 0, output
    assert f"{len(lines)} delivered, 0 failed" in output

    records = read_outputs(secured, len(lines))
    assert len(records) == len(lines), secured.logs()
    sources = Counter((r.source["partition"], r.source["offset"]) for r in records)
    assert len(sources) == len(lines)  # every input record answered exactly once
    topics = Counter(r.topic for r in records)
    assert set(topics) == {settings.validated_topic, settings.rejected_topic, settings.dlq_topic}
    wait_for(
        lambda: scrape(port).get("claims_end_to_end_seconds_count") == len(lines), 30, "metrics"
    )
    assert scrape(port)['claims_transactions_total{outcome="committed"}'] >= 1

    # The stage's user lists its topics; the admin's .properties works for Kafka's own tools.
    status, output, _ = _claims_stage(_as(secure_kafka, secured, "stage"), "topics", "list")
    assert status == 0, output
    assert output.count("6 partitions") == len(stage_topics(settings))
    cluster = secure_kafka.cluster
    described = subprocess.run(
        ["java", "-Xmx128m", "-cp", str(cluster.lib_dir / "*"), "kafka.admin.ConfigCommand",
         "--bootstrap-server", cluster.bootstrap, "--command-config", str(home / "admin.properties"),
         "--describe", "--entity-type", "topics", "--entity-name", settings.input_topic],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert described.returncode == 0, described.stderr[-2000:]
    assert settings.input_topic in described.stdout

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, secured.logs()


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("wrong password", "authentication failed"),
        ("the producer's user", "authorization failed for user 'producer'"),
        ("no TLS trust", "TLS handshake"),
    ],
)
def test_a_refused_worker_exits_2_quickly_naming_the_cause(
    secure_kafka: SecureKafka, secured: StageDeployment, case: str, cause: str
) -> None:
    env = _as(secure_kafka, secured, "stage") | {"CLAIMS_WEB_PORT": str(free_port())}
    if case == "wrong password":
        env["CLAIMS_SASL_PASSWORD"] = "not-the-password"
    elif case == "the producer's user":
        env |= secure_kafka.env("producer")
    else:
        del env["CLAIMS_SSL_CAFILE"]  # the system's CAs do not know the cluster's own CA
    status, output, seconds = _claims_stage(env, "worker", timeout=FAIL_WITHIN)
    print(f"\n{case}: exit {status} after {seconds:.1f} s")
    assert status == 2, output
    message = " ".join(output.split())  # the console wraps long lines
    assert cause in message
    assert "Traceback" not in output
    if case == "the producer's user":
        settings = secured.settings
        assert f"may not read topic '{settings.input_topic}'" in message
        assert f"may not write topic '{settings.validated_topic}'" in message
        assert f"may not use consumer group '{settings.app_id}'" in message


def test_the_producer_user_cannot_read_claims_validated(
    secure_kafka: SecureKafka, secured: StageDeployment
) -> None:
    settings = secured.settings
    producer = settings_from(secured.stage_env() | secure_kafka.env("producer"))
    # Even with a consumer group of its own, the producer's user may not read the topic.
    group = f"snoop-{uuid.uuid4().hex[:6]}"
    grant(settings, [Grant("User:producer", "group", group, "READ")])
    consumer = clients.consumer(producer, group, **{"auto.offset.reset": "earliest"})
    errors: set[str] = set()
    try:
        consumer.subscribe([settings.validated_topic])
        deadline = time.monotonic() + 20
        while not errors and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            assert error is not None, "the producer's user read a decision"
            errors.add(error.name())
    finally:
        consumer.close()
    assert errors == {"TOPIC_AUTHORIZATION_FAILED"}

    # `tail` as the producer's user says so, and which topic.
    status, output, _ = _claims_stage(
        _as(secure_kafka, secured, "producer"),
        "tail",
        settings.validated_topic,
        "--idle",
        "5",
        timeout=FAIL_WITHIN,
    )
    assert status == 2, output
    assert f"may not read topic '{settings.validated_topic}'" in " ".join(output.split())


def test_a_revoked_acl_stops_the_running_worker_with_status_2(
    secure_kafka: SecureKafka, secured: StageDeployment
) -> None:
    settings = secured.settings
    worker, port = secured.start_worker()
    secured.wait_healthy(port)
    revoke(settings, [Grant("User:stage", "topic", settings.validated_topic, "WRITE")])
    revoked = time.monotonic()
    status, output, _ = _claims_stage(
        _as(secure_kafka, secured, "producer"),
        "send",
        str(ROOT / "schemas/examples/encounters.jsonl"),
    )
    assert status == 0, output
    exit_status = worker.wait(timeout=FAIL_WITHIN)
    seconds = time.monotonic() - revoked
    print(
        f"\nrevoked WRITE on {settings.validated_topic}: exit {exit_status} after {seconds:.1f} s"
    )
    assert exit_status == 2, secured.logs()
    log = " ".join(secured.log_of(0).split())
    assert f"may not write topic '{settings.validated_topic}'" in log
    # Nothing was committed past an output the broker did not store: every committed
    # input record has its output.
    stored = read_outputs(secured, 0, timeout=10, until=lambda _: False)
    answered = {(r.source["partition"], r.source["offset"]) for r in stored}
    committed = secured.committed_offsets()
    unanswered = [(p, o) for p, upto in committed.items() for o in range(upto)]
    unanswered = [where for where in unanswered if where not in answered]
    assert not unanswered, (committed, sorted(answered))


# ---------------------------------------------------------------- protected health information

PHI_BIRTH_DATE = "1919-07-31"
PHI_CODES = ("C50.912", "C78.01", "C79.51", "Z51.11")


def _phi_records(run: str, count: int) -> tuple[list[bytes], list[str]]:
    """Claims with marked patient details and free text, and bad records carrying them too;
    with every marker that must never reach a log or a metric."""
    markers = [PHI_BIRTH_DATE, *PHI_CODES, *(code.replace(".", "") for code in PHI_CODES)]
    records: list[bytes] = []
    for n in range(count):
        patient, reason = f"PHIPATIENT{run}{n}X", f"PHIREASON{run}{n}X shortness of breath"
        markers += [patient, reason.split()[0]]
        event = {
            "schema_version": 1,
            "event_id": f"phi-{run}-{n}",
            "claim_id": f"CLM-PHI-{run}-{n}",
            "setting": "outpatient",
            "date_of_service": "2026-05-15",
            "patient": {"id": patient, "birth_date": PHI_BIRTH_DATE, "sex": "F"},
            "context": {"reason_for_encounter": reason, "primary_status": "active"},
            "diagnoses": [{"sequence": i, "code": c} for i, c in enumerate(PHI_CODES, 1)],
        }
        records.append(json.dumps(event).encode())
    # A contract violation, a broken line and undecodable bytes, each with patient details.
    name = f"PHINAME{run}X"
    markers.append(name)
    violation = dict(json.loads(records[0]), event_id=f"phi-{run}-bad", patient_name=name)
    records += [
        json.dumps(violation).encode(),
        f'{{"patient": "{name}", "birth_date": "{PHI_BIRTH_DATE}", '.encode(),
        f"\xff{name} {PHI_BIRTH_DATE}".encode("latin-1"),
    ]
    return records, markers


def test_no_patient_detail_reaches_the_logs_or_the_metrics(
    secure_kafka: SecureKafka, secured: StageDeployment
) -> None:
    from stream.kafka.send import send_lines

    # Two workers in one group, one logging at INFO and one at DEBUG, share the records.
    levels = ("INFO", "DEBUG")
    workers = [secured.start_worker(CLAIMS_LOG_LEVEL=level) for level in levels]
    for _, port in workers:
        secured.wait_healthy(port)
    records, markers = _phi_records("run", 40)
    producer = settings_from(secured.stage_env() | secure_kafka.env("producer"))
    assert send_lines(producer, records).delivered == len(records)

    def decided() -> float:
        return sum(scrape(port).get("claims_end_to_end_seconds_count", 0) for _, port in workers)

    wait_for(lambda: decided() == len(records), 60, "every record decided")
    # The summary each worker logs (every second here) is what an operator reads at INFO.
    wait_for(
        lambda: all("decided" in secured.log_of(n) for n in range(len(levels))),
        20,
        "the summary lines",
    )
    metrics = "\n".join(f"{k} {v}" for _, port in workers for k, v in scrape(port).items())
    for worker, _ in workers:
        worker.send_signal(signal.SIGTERM)
    assert [worker.wait(timeout=60) for worker, _ in workers] == [0, 0]
    logs = {level: secured.log_of(n) for n, level in enumerate(levels)}
    assert " DEBUG " in logs["DEBUG"]
    assert " DEBUG " not in logs["INFO"]
    assert "event_id=phi-run-" in logs["DEBUG"]  # records are identified, by id only
    for level, log in logs.items():
        leaked = {marker for marker in markers if marker in log or marker in metrics}
        assert not leaked, f"found in the {level} log or the metrics: {sorted(leaked)[:10]}"
    assert len(read_outputs(secured, len(records))) == len(records)
