"""Settings from the environment: one typed object, prefix `CLAIMS_`.

Built where the application is built (`Settings()`), never at import time, so tests and
commands can pass their own.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers. When unset, `claims-stage run` starts the "
        "project's local broker on this default address.",
    )
    input_topic: str = "encounters"
    validated_topic: str = "claims.validated"
    review_topic: str = Field(
        default="claims.review",
        description='Validated decisions that a rule configured with route = "review" flagged, '
        "for a coder to look at.",
    )
    rejected_topic: str = "claims.rejected"
    dlq_topic: str = "encounters.dlq"
    app_id: str = Field(default="claims-stage", description="Faust app id: the consumer group.")
    web_host: str = Field(default="127.0.0.1", description="Where /metrics and /healthz listen.")
    web_port: int = 6066
    partitions: int = Field(default=6, ge=1, description="Partitions of topics we create.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        description="Replicas of topics we create (default: 3 on a cluster of 3 or more "
        "brokers, else one per broker).",
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="Replicas that must take a write before it counts, for topics we create "
        "(default: 2 with 3 or more replicas, else 1).",
    )
    rules_config: Path | None = Field(
        default=None,
        description="TOML policy file: rules disabled, severities and review routes, "
        "globally or per payer.",
    )
    code_sets_dir: Path = Field(
        default=Path("var/code-sets"),
        description="The store of loaded ICD-10-CM releases (`claims-stage codes load`), read "
        "at start by the worker and the batch commands. The default may be missing (the "
        "built-in code sets alone); a directory named on purpose must exist.",
    )
    local_broker_home: Path | None = Field(
        default=None, description="State folder of the local broker (default <repo>/var/kafka)."
    )
    session_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds before the group gives a silent worker's partitions to the others.",
    )
    commit_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between offset commits: what a crash can make the stage redo.",
    )
    batch_size: int = Field(
        # At full drain a batch is one transaction with exactly_once: 2,000 records spread
        # its ~15 ms commit (500 made exactly-once 0.71 x at-least-once, 2,000 0.87 x; the
        # at-least-once rate is the same with either). At low load batches stay small.
        default=2000,
        ge=1,
        description="Input records one fetch asks librdkafka for (librdkafka transport): "
        "they reach the agent together, each acknowledged once its output is stored; with "
        "exactly_once, the most records in one transaction.",
    )
    batch_wait_ms: float = Field(
        default=20.0,
        ge=0,
        description="How long a fetch waits to fill a batch (librdkafka transport): the "
        "latency it adds at low load.",
    )
    transport: Literal["librdkafka", "aiokafka"] = Field(
        default="librdkafka",
        description="How the worker reads its input: librdkafka in fetched batches (the "
        "stage's own Faust transport), or Faust's aiokafka consumer, a record at a time.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once",
        description="at_least_once: each output is stored before its input is committed; a "
        "crash makes the worker decide again what it decided since the last commit. "
        "exactly_once: the outputs of each fetched batch and the input offsets after it are "
        "committed in one Kafka transaction (librdkafka transport only); consumers of the "
        "output topics must read with isolation.level=read_committed.",
    )
    instance_id: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="This worker's name, stable across its restarts (default: the host "
        "name). With exactly_once its transactional id is <app id>-<instance id>: a "
        "restarted worker fences its predecessor's unfinished transaction at once. Two "
        "workers running at the same time must have different ones.",
    )
    transaction_timeout: float = Field(
        default=30.0,
        ge=1,
        le=900,
        description="Seconds the broker lets a transaction stay open (exactly_once) before "
        "it aborts it: how long read_committed consumers of a partition may wait for the "
        "transaction of a worker that died and does not come back under the same instance id.",
    )
    fetch_queue_mib: int = Field(
        default=8,
        ge=2,
        description="MiB of input records librdkafka fetches ahead of the worker "
        "(librdkafka transport).",
    )
    in_flight_mib: int = Field(
        default=32,
        ge=32,
        description="MiB the worker holds between taking a record and acknowledging it: the "
        "input record, its output and their bookkeeping (librdkafka's output queue is bounded "
        "by the same): past it, the worker takes nothing more until outputs are stored. At "
        "least 32, twice the largest record the stage writes.",
    )
    producer_linger_ms: float = Field(
        default=5.0, ge=0, description="How long the output producer waits to fill a batch."
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="lz4", description="Compression of output batches (done in librdkafka's threads)."
    )
    max_record_bytes: int = Field(
        default=1_048_576,
        ge=1_024,
        le=16 * 1_048_576,
        description="The largest input record decided: a larger one is a dead letter of kind "
        "too_large (1 MiB, the broker's default message size; at most 16 MiB, the largest "
        "record the stage's clients fetch).",
    )
    lag_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between the worker's consumer-lag measurements: the lag gauges "
        "and the throughput samples of the status page.",
    )
    summary_interval: float = Field(
        default=10.0,
        gt=0,
        description="Seconds between the worker's one-line summaries in the log.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Production clusters: passed through to aiokafka (worker) and librdkafka (tools).
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_and_port(cls, servers: str) -> str:
        for server in servers.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server.strip()!r} is not host:port (e.g. 127.0.0.1:9092)")
        return servers

    @model_validator(mode="after")
    def _replicas_that_can_take_a_write(self) -> Settings:
        if (
            self.replication_factor is not None
            and self.min_insync_replicas is not None
            and self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"CLAIMS_MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) is more than "
                f"CLAIMS_REPLICATION_FACTOR ({self.replication_factor}): no write could succeed"
            )
        return self

    @model_validator(mode="after")
    def _transactions_need_librdkafka(self) -> Settings:
        if self.processing_guarantee == "exactly_once" and self.transport != "librdkafka":
            raise ValueError(
                "CLAIMS_PROCESSING_GUARANTEE=exactly_once needs CLAIMS_TRANSPORT=librdkafka "
                "(the input offsets are committed in the outputs' transaction)"
            )
        return self

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def transactional_id(self) -> str:
        """`<app id>-<instance id>`: stable per worker instance. Since KIP-447 (brokers 2.5+,
        librdkafka 1.9+) the consumer group's metadata sent with the offsets fences a worker
        that lost its partitions in a rebalance, so the id need not follow partitions; being
        stable across a worker's restarts, it lets the restarted worker abort at once the
        transaction its predecessor left open."""
        return f"{self.app_id}-{self.instance_id}"

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        """With SASL, a user, a password and a mechanism, all given: each client would
        otherwise fill a gap its own way (librdkafka falls back to GSSAPI, Faust to PLAIN)
        and the two would fail differently, or one of them only later. Without SASL, none:
        credentials that nothing sends are a mistake to say at start, not to find later."""
        given = [
            f"CLAIMS_{name.upper()}"
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, name) is not None
        ]
        if not self.security_protocol.startswith("SASL_"):
            if given:
                raise ValueError(
                    f"{', '.join(given)} given, but CLAIMS_SECURITY_PROTOCOL="
                    f"{self.security_protocol} does not use SASL: set SASL_SSL or "
                    "SASL_PLAINTEXT, or leave the SASL settings out"
                )
            return self
        missing = [
            f"CLAIMS_{name.upper()}"
            for name in ("sasl_mechanism", "sasl_username", "sasl_password")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(
                f"CLAIMS_SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{', '.join(missing)} (a SASL user, a password and a mechanism: "
                "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        return self

    @property
    def broker_configured(self) -> bool:
        """Whether the operator named a broker, as opposed to relying on the local default."""
        return "kafka_bootstrap" in self.model_fields_set
