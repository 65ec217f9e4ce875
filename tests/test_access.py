"""What the stage needs on a secured cluster, and how refusals are named: no broker needed."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiokafka.errors
import pytest
from confluent_kafka import KafkaError
from pydantic import ValidationError

from stream.kafka import acls, topics
from stream.kafka.access import describe_failure, fatal_cause, stage_needs
from stream.kafka.acls import Grant, stage_grants
from stream.kafka.topics import TopicsError, replication
from stream.ops.health import WorkerState
from stream.settings import Settings
from stream.worker.fatal import exception_cause

NOW = 1_800_000_000.0


def settings(**changes: object) -> Settings:
    return Settings(kafka_bootstrap="kafka-1:9093", **changes)  # type: ignore[arg-type]


def test_the_stage_may_read_its_input_with_its_group_and_write_its_outputs_only() -> None:
    grants = stage_grants(settings())
    assert sorted(grants) == sorted(
        [
            Grant("User:stage", "topic", "encounters", "READ"),
            Grant("User:stage", "group", "claims-stage", "READ"),
            Grant("User:stage", "topic", "claims.validated", "WRITE"),
            Grant("User:stage", "topic", "claims.review", "WRITE"),
            Grant("User:stage", "topic", "claims.rejected", "WRITE"),
            Grant("User:stage", "topic", "encounters.dlq", "WRITE"),
            Grant("User:producer", "topic", "encounters", "WRITE"),
        ]
    )
    renamed = stage_grants(settings(input_topic="in", app_id="g"), "svc-stage", "svc-in")
    assert Grant("User:svc-stage", "topic", "in", "READ") in renamed
    assert Grant("User:svc-stage", "group", "g", "READ") in renamed
    assert Grant("User:svc-in", "topic", "in", "WRITE") in renamed


def test_a_new_output_topic_gets_its_write_acl_without_a_list_to_edit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = topics.stage_topics

    def with_audit(s: Settings) -> dict[str, str]:
        return {**original(s), "claims.audit": "audit"}

    monkeypatch.setattr(topics, "stage_topics", with_audit)
    monkeypatch.setattr(acls, "stage_topics", with_audit)
    assert Grant("User:stage", "topic", "claims.audit", "WRITE") in stage_grants(settings())
    assert "claims.audit" in stage_needs(settings()).write  # and the start-up check asks


def test_the_review_topic_is_granted_and_needed_only_with_a_review_route() -> None:
    assert Grant("User:stage", "topic", "claims.review", "WRITE") in stage_grants(settings())
    assert "claims.review" not in stage_needs(settings()).write
    assert "claims.review" in stage_needs(settings(), review=True).write


def test_exactly_once_adds_the_workers_transactional_ids_by_prefix() -> None:
    assert all(g.resource != "transactional_id" for g in stage_grants(settings()))
    grants = stage_grants(settings(processing_guarantee="exactly_once", app_id="g"), "svc")
    transactional = [g for g in grants if g.resource == "transactional_id"]
    # Every worker's id is <app id>-<instance id>: one prefixed ACL covers them all.
    assert transactional == [Grant("User:svc", "transactional_id", "g-", "WRITE", "PREFIXED")]
    assert (
        transactional[0]
        .kafka_acls("kafka-1:9093")
        .endswith("--operation Write --transactional-id g- --resource-pattern-type prefixed")
    )


def test_acls_print_as_kafka_acls_commands() -> None:
    grant = Grant("User:stage", "group", "claims-stage", "READ")
    assert grant.kafka_acls("kafka-1:9093") == (
        "kafka-acls.sh --bootstrap-server kafka-1:9093 --command-config admin.properties "
        "--add --allow-principal User:stage --operation Read --group claims-stage"
    )


def test_the_worker_needs_its_input_group_and_outputs() -> None:
    needs = stage_needs(settings())
    assert needs.read == ("encounters",)
    assert needs.groups == ("claims-stage",)
    assert set(needs.write) == {"claims.validated", "claims.rejected", "encounters.dlq"}


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (KafkaError._AUTHENTICATION, "authentication"),
        (KafkaError.SASL_AUTHENTICATION_FAILED, "authentication"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "authorization"),
        (KafkaError.GROUP_AUTHORIZATION_FAILED, "authorization"),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "authorization"),
        (KafkaError._TRANSPORT, None),
        (KafkaError._ALL_BROKERS_DOWN, None),
        (KafkaError.NOT_LEADER_FOR_PARTITION, None),
        (KafkaError.REQUEST_TIMED_OUT, None),
    ],
)
def test_only_refusals_that_retrying_cannot_cure_are_fatal(code: int, cause: str | None) -> None:
    assert fatal_cause(KafkaError(code)) == cause


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("SSL handshake failed: error:0A000086:SSL routines::certificate verify failed", "tls"),
        ("SSL handshake failed: error:0A00010B:SSL routines::wrong version number", "tls"),
        ("SSL handshake failed: Disconnected: connection closed by peer", None),
        ("SSL transport error: Connection reset by peer", None),
    ],
)
def test_an_untrusted_certificate_is_fatal_a_broken_handshake_is_not(
    text: str, cause: str | None
) -> None:
    assert fatal_cause(KafkaError(KafkaError._SSL, text)) == cause


def test_failure_messages_name_the_cause_and_what_to_check() -> None:
    secured = settings(
        security_protocol="SASL_SSL",
        sasl_username="stage",
        sasl_password="s3cret",
        sasl_mechanism="SCRAM-SHA-512",
    )
    message = describe_failure("authentication", "invalid credentials", secured)
    assert message.startswith("authentication failed: kafka-1:9093 refused user 'stage'")
    assert "CLAIMS_SASL_PASSWORD" in message
    assert describe_failure("tls", "certificate verify failed", secured).startswith(
        "TLS handshake with kafka-1:9093 failed: certificate verify failed"
    )
    assert describe_failure("authorization", "may not read topic 'x'", secured) == (
        "authorization failed for user 'stage': may not read topic 'x'"
    )


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (aiokafka.errors.GroupAuthorizationFailedError(), "authorization"),
        (aiokafka.errors.TopicAuthorizationFailedError(), "authorization"),
        # aiokafka's recovery wraps the named error in a plain KafkaError.
        (aiokafka.errors.KafkaError("TopicAuthorizationFailedError()"), "authorization"),
        (aiokafka.errors.SaslAuthenticationFailed(), "authentication"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "tls"),
        (ssl.SSLError("EOF occurred in violation of protocol"), None),
        (aiokafka.errors.KafkaConnectionError("no route"), None),
        (ValueError("a bug"), None),
    ],
)
def test_faust_crashes_on_refusals_are_told_from_other_crashes(
    error: BaseException, cause: str | None
) -> None:
    found = exception_cause(error)
    assert (found[0] if found else None) == cause


def test_a_refusal_behind_another_exception_is_found() -> None:
    outer = RuntimeError("consumer crashed")
    outer.__cause__ = aiokafka.errors.GroupAuthorizationFailedError()
    assert exception_cause(outer) == ("authorization", "GroupAuthorizationFailedError")


@pytest.mark.parametrize(
    ("brokers", "factor", "min_isr", "expected"),
    [
        (1, None, None, (1, 1)),
        (3, None, None, (3, 2)),
        (6, None, None, (3, 2)),
        (3, 1, None, (1, 1)),  # the settings say otherwise
        (3, 2, None, (2, 1)),
        (3, None, 3, (3, 3)),
        (5, 5, None, (5, 2)),
    ],
)
def test_topics_get_three_replicas_two_in_sync_on_three_brokers_unless_set(
    brokers: int, factor: int | None, min_isr: int | None, expected: tuple[int, int]
) -> None:
    chosen = settings(replication_factor=factor, min_insync_replicas=min_isr)
    assert replication(chosen, brokers) == expected


def test_replication_the_cluster_cannot_give_is_refused() -> None:
    with pytest.raises(TopicsError, match="replication factor 3 needs 3 brokers"):
        replication(settings(replication_factor=3), 1)
    with pytest.raises(TopicsError, match="every write would fail"):
        replication(settings(min_insync_replicas=2), 1)
    with pytest.raises(ValidationError, match="no write could succeed"):
        settings(replication_factor=2, min_insync_replicas=3)


def test_healthz_turns_503_once_kafka_is_unreachable_longer_than_the_session_timeout() -> None:
    state = WorkerState(last_progress=NOW - 60, assigned_at=NOW - 60, session_timeout=10.0)
    state.kafka_unreachable(NOW - 8, "_TRANSPORT: connection refused")
    assert state.health({0, 1}, NOW)[0]  # 8 s: the group has not given up on us yet
    state.kafka_unreachable(NOW - 3, "_TIMED_OUT: no answer")  # a later failure: same run
    ok, reason = state.health({0, 1}, NOW + 4)
    assert not ok
    assert reason == (
        "Kafka unreachable for 12 s (longer than the 10 s session timeout): _TIMED_OUT: no answer"
    )
    # With no partition held either, the cause that explains it is the one reported.
    assert state.health(set(), NOW + 4)[1].startswith("Kafka unreachable")
    state.kafka_reachable()
    assert state.health({0, 1}, NOW + 5) == (True, "ok: 2 partitions, 0 records waiting")


def test_an_output_stored_after_the_failed_call_began_restarts_the_silence() -> None:
    # A lag reading begun 20 s ago failed just now, but the cluster stored an output 2 s ago:
    # it has been silent for 2 s, not 20.
    state = WorkerState(last_progress=NOW - 2, assigned_at=NOW - 60, session_timeout=10.0)
    state.kafka_unreachable(NOW - 20, "_TIMED_OUT: no answer")
    assert state.health({0}, NOW) == (True, "ok: 1 partitions, 0 records waiting")
    ok, reason = state.health({0}, NOW + 9)
    assert not ok
    assert reason.startswith("Kafka unreachable for 11 s")


def test_the_security_page_shows_exactly_the_acls_the_stage_asks_for() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "security.md").read_text()
    block = page.split("<!-- acls:start")[1].split("<!-- acls:end -->")[0]
    shown = [line for line in block.splitlines() if line.startswith("kafka-acls.sh")]
    defaults = Settings(kafka_bootstrap="kafka-1:9093")
    assert shown == [grant.kafka_acls("kafka-1:9093") for grant in stage_grants(defaults)]
