"""Settings from the environment: one typed object, prefix CLAIMS_."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.kafka.clients import connection
from stream.settings import Settings


def test_defaults_name_the_contract_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMS_KAFKA_BOOTSTRAP", raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert not settings.broker_configured  # so `run` starts the local broker
    assert (
        settings.input_topic,
        settings.validated_topic,
        settings.rejected_topic,
        settings.dlq_topic,
        settings.app_id,
        settings.web_port,
        settings.partitions,
    ) == (
        "encounters",
        "claims.validated",
        "claims.rejected",
        "encounters.dlq",
        "claims-stage",
        6066,
        6,
    )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("CLAIMS_PARTITIONS", "24")
    monkeypatch.setenv("CLAIMS_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CLAIMS_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CLAIMS_SASL_USERNAME", "stage")
    monkeypatch.setenv("CLAIMS_SASL_PASSWORD", "s3cret")
    settings = Settings()
    assert settings.broker_configured
    assert settings.partitions == 24
    config = connection(settings)
    assert config["bootstrap.servers"] == "kafka-1:9092,kafka-2:9092"
    assert config["security.protocol"] == "sasl_ssl"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "stage"
    assert config["sasl.password"] == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets stay out of logs and tracebacks


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("bootstrap", ["kafka-1", "kafka-1:", "kafka-1:port", ":9092", "a:9092,b"])
def test_a_bootstrap_server_without_a_port_is_refused(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str
) -> None:
    monkeypatch.setenv("CLAIMS_KAFKA_BOOTSTRAP", bootstrap)
    with pytest.raises(ValidationError, match="is not host:port"):
        Settings()


def test_the_worker_intervals_default_to_production_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (Settings().lag_interval, Settings().summary_interval) == (5.0, 10.0)
    monkeypatch.setenv("CLAIMS_LAG_INTERVAL", "0.5")
    monkeypatch.setenv("CLAIMS_SUMMARY_INTERVAL", "2")
    assert (Settings().lag_interval, Settings().summary_interval) == (0.5, 2.0)
    monkeypatch.setenv("CLAIMS_SUMMARY_INTERVAL", "0")
    with pytest.raises(ValidationError):
        Settings()
