"""Every Kafka client the stage makes, built from `Settings` in one place.

librdkafka (confluent-kafka) serves everything outside the worker's consumer: the output
producer, the admin client, `send`, `tail`, lag reading and the benchmarks. The worker's
consumer is Faust's aiokafka; `faust_credentials` gives it the same security settings.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from stream.settings import Settings

PARTITIONER = "murmur2_random"
"""Java clients and aiokafka (the worker) place keys with murmur2; librdkafka's default
differs, so a claim sent here would land in another partition than the same claim sent by
a Java producer. Same partitioner, same partition."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest record the stage writes: a dead letter keeps a whole oversized input
(base64-encoded) plus its error, so the dead-letter topic and the producers allow this."""


def connection(settings: Settings) -> dict[str, Any]:
    """Where the cluster is and how to authenticate: the part every client shares."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.security_protocol.lower(),
        # librdkafka narrates retries it recovers from on its own (a coordinator still
        # loading, a broker restarting); errors still reach the log, through ours.
        "log_level": 3,
        "logger": logging.getLogger("claims_stage.kafka"),
    }
    credentials = sasl(settings)
    if credentials is not None:
        config["sasl.mechanism"], config["sasl.username"], config["sasl.password"] = credentials
    if settings.ssl_cafile:
        config["ssl.ca.location"] = str(settings.ssl_cafile)
    if settings.ssl_certfile:
        config["ssl.certificate.location"] = str(settings.ssl_certfile)
    if settings.ssl_keyfile:
        config["ssl.key.location"] = str(settings.ssl_keyfile)
    return config


def sasl(settings: Settings) -> tuple[str, str, str] | None:
    """(mechanism, user, password) for a SASL protocol, None otherwise: what both clients
    (librdkafka here, aiokafka in `faust_credentials`) authenticate with, so that neither
    falls back to a mechanism of its own (librdkafka's is GSSAPI, Faust's PLAIN).

    `Settings` refuses SASL without all three; this refuses settings built around that
    check (`model_copy`, `model_construct`) the same way.
    """
    if not settings.security_protocol.startswith("SASL_"):
        return None
    mechanism, user, password = (
        settings.sasl_mechanism,
        settings.sasl_username,
        settings.sasl_password,
    )
    if not (mechanism and user and password):
        raise ValueError(
            f"CLAIMS_SECURITY_PROTOCOL={settings.security_protocol} needs "
            "CLAIMS_SASL_MECHANISM, CLAIMS_SASL_USERNAME and CLAIMS_SASL_PASSWORD"
        )
    return mechanism, user, password.get_secret_value()


def producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer whose retries never duplicate, placing keys as Java and aiokafka do."""
    return Producer(
        {
            **connection(settings),
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
            "linger.ms": settings.producer_linger_ms,
            "compression.type": settings.producer_compression,
            "message.max.bytes": MAX_MESSAGE_BYTES,
            **overrides,
        }
    )


def consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that commits nothing unless asked to, and reads committed records only:
    with an exactly-once worker, outputs of an aborted transaction are never read, and
    those of an open one once it commits (librdkafka's default, said here on purpose)."""
    return Consumer(
        {
            **connection(settings),
            "group.id": group_id,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
            **overrides,
        }
    )


def admin(settings: Settings) -> AdminClient:
    return AdminClient(connection(settings))


def faust_broker_urls(settings: Settings) -> list[str]:
    """The bootstrap servers as Faust's aiokafka transport names them."""
    servers = settings.kafka_bootstrap.split(",")
    return [f"kafka://{server.strip()}" for server in servers if server.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of Python clients: verifies the broker's certificate and name against
    CLAIMS_SSL_CAFILE (else the system's CAs), with a client certificate if one is given."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
    )
    if settings.ssl_certfile:
        context.load_cert_chain(
            str(settings.ssl_certfile),
            str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    return context


def faust_credentials(settings: Settings) -> Any:
    """The same security settings for Faust's aiokafka consumer; None for PLAINTEXT."""
    import faust

    if settings.security_protocol == "PLAINTEXT":
        return None
    context = None
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl_context(settings)
    credentials = sasl(settings)
    if credentials is None:  # SSL
        return faust.SSLCredentials(context)
    mechanism, username, password = credentials
    # SASL_PLAINTEXT without a context, SASL_SSL with one: Faust tells them apart by it.
    return faust.SASLCredentials(
        username=username, password=password, ssl_context=context, mechanism=mechanism
    )
