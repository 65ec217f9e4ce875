"""Settings from the environment: one typed object, prefix `CLAIMS_`.

Built where the application is built (`Settings()`), never at import time, so tests and
commands can pass their own.
"""

from __future__ import annotations

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
        default=500,
        ge=1,
        description="Input records the worker takes at a time: decided and sent together, "
        "each acknowledged once its output is stored.",
    )
    batch_wait_ms: float = Field(
        default=20.0,
        ge=0,
        description="How long the worker waits to fill a batch: the latency it adds at low load.",
    )
    producer_linger_ms: float = Field(
        default=5.0, ge=0, description="How long the output producer waits to fill a batch."
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        default="lz4", description="Compression of output batches (done in librdkafka's threads)."
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

    @property
    def broker_configured(self) -> bool:
        """Whether the operator named a broker, as opposed to relying on the local default."""
        return "kafka_bootstrap" in self.model_fields_set
