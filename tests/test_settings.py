"""Settings from the environment: one typed object, prefix CLAIMS_."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.core.contracts import MAX_RECORD_BYTES
from stream.kafka.clients import connection, faust_credentials
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


SASL_PROTOCOLS = ["SASL_PLAINTEXT", "SASL_SSL"]
SASL = {
    "CLAIMS_SASL_MECHANISM": "SCRAM-SHA-256",
    "CLAIMS_SASL_USERNAME": "stage",
    "CLAIMS_SASL_PASSWORD": "s3cret",
}


def _environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name in ("CLAIMS_SECURITY_PROTOCOL", *SASL):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("protocol", SASL_PROTOCOLS)
@pytest.mark.parametrize("left_out", sorted(SASL))
def test_sasl_needs_a_user_a_password_and_a_mechanism(
    monkeypatch: pytest.MonkeyPatch, protocol: str, left_out: str
) -> None:
    given = {name: value for name, value in SASL.items() if name != left_out}
    _environment(monkeypatch, CLAIMS_SECURITY_PROTOCOL=protocol, **given)
    with pytest.raises(ValidationError, match=left_out):
        Settings()


@pytest.mark.parametrize("protocol", SASL_PROTOCOLS)
def test_an_empty_sasl_setting_is_a_missing_one(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    _environment(monkeypatch, CLAIMS_SECURITY_PROTOCOL=protocol, **SASL)
    monkeypatch.setenv("CLAIMS_SASL_PASSWORD", "")
    with pytest.raises(ValidationError, match="CLAIMS_SASL_PASSWORD"):
        Settings()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_sasl_settings_without_sasl_are_refused(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    _environment(monkeypatch, CLAIMS_SECURITY_PROTOCOL=protocol, CLAIMS_SASL_USERNAME="stage")
    with pytest.raises(ValidationError, match="CLAIMS_SASL_USERNAME given, but"):
        Settings()


@pytest.mark.parametrize("protocol", SASL_PROTOCOLS)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_both_clients_authenticate_with_the_same_mechanism(
    monkeypatch: pytest.MonkeyPatch, protocol: str, mechanism: str
) -> None:
    _environment(monkeypatch, CLAIMS_SECURITY_PROTOCOL=protocol, **SASL)
    monkeypatch.setenv("CLAIMS_SASL_MECHANISM", mechanism)
    monkeypatch.delenv("CLAIMS_SSL_CAFILE", raising=False)  # the system CAs
    settings = Settings()
    librdkafka = connection(settings)
    faust = faust_credentials(settings)
    assert librdkafka["sasl.mechanism"] == mechanism
    assert str(faust.mechanism.value) == mechanism
    assert (faust.username, faust.password) == (librdkafka["sasl.username"], "s3cret")


def test_settings_built_around_the_check_are_refused_by_the_clients() -> None:
    incomplete = Settings(kafka_bootstrap="kafka-1:9092").model_copy(
        update={"security_protocol": "SASL_SSL", "sasl_username": "stage"}
    )
    with pytest.raises(ValueError, match="CLAIMS_SASL_MECHANISM"):
        connection(incomplete)
    with pytest.raises(ValueError, match="CLAIMS_SASL_MECHANISM"):
        faust_credentials(incomplete)


def test_the_maximum_record_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMS_MAX_RECORD_BYTES", raising=False)
    assert Settings().max_record_bytes == MAX_RECORD_BYTES == 1_048_576
    monkeypatch.setenv("CLAIMS_MAX_RECORD_BYTES", "4194304")
    assert Settings().max_record_bytes == 4 * 1_048_576
    for wrong in ("100", str(17 * 1_048_576), "1MiB"):
        monkeypatch.setenv("CLAIMS_MAX_RECORD_BYTES", wrong)
        with pytest.raises(ValidationError, match="max_record_bytes"):
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
