"""Can this user do what a command needs on this cluster? Asked once, before the work starts.

A Kafka client meeting a wrong password, an untrusted certificate or a missing ACL retries
forever and logs the same line again and again. The stage asks first, with one admin client:
it describes the topics and the consumer group with the operations the broker allows this
user, and watches the client's errors. The answer is quick and says what is wrong:

- authentication: the broker refused the user (wrong name, password or mechanism);
- TLS: the handshake failed (the broker's certificate is not trusted, or no TLS spoken);
- authorization: which topic the user may not read or write, which group it may not use;
- missing topics, or no broker answering at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient  # type: ignore[attr-defined]

from stream.kafka import clients
from stream.settings import Settings

Cause = Literal["authentication", "tls", "authorization", "missing topics", "unreachable"]

PROBE_TIMEOUT = 20.0
"""Seconds the probe waits for a broker to answer before calling the cluster unreachable."""

AUTHENTICATION_CODES = frozenset({"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"})
TLS_CODES = frozenset({"_SSL"})
AUTHORIZATION_CODES = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    }
)
RETRIABLE_GROUP_CODES = frozenset(
    {"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE"}
)


class AccessError(RuntimeError):
    """The user cannot do what the command needs; `cause` says why in one word."""

    def __init__(self, cause: Cause, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class Needs:
    """What a command does on the cluster: topics it reads and writes, groups it joins."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @property
    def topics(self) -> list[str]:
        return sorted({*self.read, *self.write})


def stage_needs(settings: Settings, review: bool = False) -> Needs:
    """The worker reads the input with its group and writes every output topic: the review
    topic too when its policies route claims to review (`review`)."""
    from stream.kafka.topics import output_topics

    outputs = tuple(output_topics(settings, review))
    return Needs(read=(settings.input_topic,), write=outputs, groups=(settings.app_id,))


TLS_REFUSALS = ("certificate", "wrong version number", "unknown ca", "no protocols available")
"""What an SSL error says when the handshake cannot succeed however often it is tried (a
connection closed mid-handshake by a restarting broker says otherwise, and is retried)."""


def fatal_cause(error: KafkaError) -> Cause | None:
    """Whether a client error is one that retrying cannot cure, and which kind."""
    name = error.name()
    if name in AUTHENTICATION_CODES:
        return "authentication"
    if name in TLS_CODES:
        text = error.str().lower()
        return "tls" if any(refusal in text for refusal in TLS_REFUSALS) else None
    if name in AUTHORIZATION_CODES:
        return "authorization"
    return None


def describe_failure(cause: Cause, error_text: str, settings: Settings) -> str:
    """The one-line message for a fatal client error: the cause first, then what to check."""
    where = settings.kafka_bootstrap
    user = repr(settings.sasl_username) if settings.sasl_username else "(no SASL user)"
    if cause == "authentication":
        return (
            f"authentication failed: {where} refused user {user} "
            f"({settings.sasl_mechanism or 'no SASL mechanism'}): {error_text}. Check "
            "CLAIMS_SASL_USERNAME, CLAIMS_SASL_PASSWORD and CLAIMS_SASL_MECHANISM."
        )
    if cause == "tls":
        return (
            f"TLS handshake with {where} failed: {error_text}. Check that CLAIMS_SSL_CAFILE "
            "names the CA that signed the broker's certificate, and CLAIMS_SECURITY_PROTOCOL."
        )
    if cause == "authorization":
        return f"authorization failed for user {user}: {error_text}"
    return error_text


@dataclass
class ErrorWatch:
    """librdkafka's `error_cb`: keeps the first fatal error and the first other one."""

    fatal: tuple[Cause, str] | None = None
    first: str | None = None

    def __call__(self, error: KafkaError) -> None:
        cause = fatal_cause(error)
        if cause is not None and self.fatal is None:
            self.fatal = (cause, error.str())
        elif cause is None and self.first is None and error.name() != "_ALL_BROKERS_DOWN":
            self.first = error.str()


@dataclass
class _Probe:
    settings: Settings
    deadline: float
    watch: ErrorWatch = field(default_factory=ErrorWatch)
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        # Quiet: the probe's own message says what librdkafka would log again and again.
        config: dict[str, Any] = {
            **clients.connection(self.settings),
            "error_cb": self.watch,
            "log_level": 0,
        }
        self.admin = AdminClient(config)

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.1)

    def wait(self, futures: Iterable[Future[Any]]) -> None:
        """Serve the client's callbacks until the futures are done; stop at a fatal error."""
        pending = list(futures)
        while True:
            self.admin.poll(0.1)
            if self.watch.fatal is not None:
                cause, text = self.watch.fatal
                raise AccessError(cause, describe_failure(cause, text, self.settings))
            if all(f.done() for f in pending):
                return
            if time.monotonic() > self.deadline:
                raise self.unreachable()

    def unreachable(self, error: KafkaError | None = None) -> AccessError:
        detail = self.watch.first or (error.str() if error is not None else "no answer")
        return AccessError(
            "unreachable",
            f"cannot reach Kafka at {self.settings.kafka_bootstrap}: no broker answered in "
            f"time ({detail}). Check CLAIMS_KAFKA_BOOTSTRAP, and CLAIMS_SECURITY_PROTOCOL "
            f"({self.settings.security_protocol}): a secured listener hangs up on a client "
            "that does not speak TLS or SASL.",
        )


def _operations(result: Any) -> set[str] | None:
    operations = getattr(result, "authorized_operations", None)
    if operations is None:
        return None
    return {op.name for op in operations if isinstance(op, AclOperation)}


def _check_topics(probe: _Probe, needs: Needs) -> tuple[list[str], list[str]]:
    """(missing topics, authorization problems) of the needed topics."""
    if not needs.topics:
        return [], []
    futures = probe.admin.describe_topics(
        TopicCollection(needs.topics),
        request_timeout=probe.remaining(),
        include_authorized_operations=True,
    )
    probe.wait(futures.values())
    missing, refused = [], []
    for name, future in sorted(futures.items()):
        try:
            allowed = _operations(future.result())
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "UNKNOWN_TOPIC_OR_PART":
                missing.append(name)
            elif error.name() in AUTHORIZATION_CODES:
                verbs = [
                    v for v, ts in (("read", needs.read), ("write", needs.write)) if name in ts
                ]
                refused.append(f"may not {' or '.join(verbs)} topic {name!r}")
            elif fatal_cause(error) is None and error.retriable():
                raise probe.unreachable(error) from exc
            else:
                raise
            continue
        if allowed is None:  # a broker without an authorizer does not say: all allowed
            continue
        if name in needs.read and "READ" not in allowed and "ALL" not in allowed:
            refused.append(f"may not read topic {name!r}")
        if name in needs.write and "WRITE" not in allowed and "ALL" not in allowed:
            refused.append(f"may not write topic {name!r}")
    return missing, refused


def _check_group(probe: _Probe, group: str) -> str | None:
    """An authorization problem with the consumer group, or None."""
    while True:
        futures = probe.admin.describe_consumer_groups(
            [group], request_timeout=probe.remaining(), include_authorized_operations=True
        )
        probe.wait(futures.values())
        try:
            allowed = _operations(futures[group].result())
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() in AUTHORIZATION_CODES:
                return f"may not use consumer group {group!r}"
            if error.name() in RETRIABLE_GROUP_CODES or error.retriable():
                # The group coordinator is still loading (a new or restarted broker).
                if time.monotonic() > probe.deadline:
                    raise probe.unreachable(error) from exc
                time.sleep(0.2)
                continue
            raise
        if allowed is not None and not {"READ", "ALL"} & allowed:
            return f"may not use consumer group {group!r}"
        return None


def check_access(settings: Settings, needs: Needs, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise AccessError unless the user can reach the cluster and do what `needs` says."""
    probe = _Probe(settings, time.monotonic() + timeout)
    # The cluster first: it fails fast on authentication and TLS, and proves a broker answers.
    future: Future[Any] = probe.admin.describe_cluster(request_timeout=probe.remaining())
    probe.wait([future])
    try:
        future.result()
    except KafkaException as exc:
        error = exc.args[0]
        cause = fatal_cause(error)
        if cause is not None:
            raise AccessError(cause, describe_failure(cause, error.str(), settings)) from exc
        raise probe.unreachable(error) from exc
    missing, refused = _check_topics(probe, needs)
    refused += [problem for group in needs.groups if (problem := _check_group(probe, group))]
    if refused:
        raise AccessError(
            "authorization",
            describe_failure("authorization", "; ".join(refused), settings)
            + ". The cluster's admin grants these ACLs (docs/security.md).",
        )
    if missing:
        raise AccessError(
            "missing topics",
            f"missing topics on {settings.kafka_bootstrap}: {', '.join(missing)}",
        )
