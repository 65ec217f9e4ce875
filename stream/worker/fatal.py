"""Ending the worker when Kafka refuses it for good: exit status 2 and the cause, not a retry loop.

A wrong password, an untrusted certificate or a revoked ACL does not cure itself: a worker
that kept retrying would hold its partitions, decide nothing and fill its log. Once such an
error is seen, the worker logs the cause once, stops as on SIGTERM (committing what its
outputs allow) and exits with status 2; if the stop hangs on outputs the broker will never
take, it exits anyway after `GRACE` seconds. No offset is committed past an output that was
not stored, so a restart with the right settings loses nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from stream.kafka.access import AUTHORIZATION_CODES, Cause, describe_failure, fatal_cause
from stream.settings import Settings

log = logging.getLogger("claims_stage.worker")

EXIT_STATUS = 2
"""A refusal that retrying cannot cure: credentials, TLS, an ACL, a topic's configuration."""
FAULT_EXIT_STATUS = 1
"""A fault in the worker itself (an exception where none was expected): a crash."""
GRACE = 5.0
"""Seconds the graceful stop may take before the process exits regardless."""

FENCED_CODES = frozenset(
    {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
)
"""A transactional producer fenced by a newer one with the same transactional id."""

# aiokafka's names for the same refusals, seen when Faust's consumer crashes on one.
_AIOKAFKA_CAUSES: dict[str, Cause] = {
    "SaslAuthenticationFailed": "authentication",
    "AuthenticationFailedError": "authentication",
    "IllegalSaslStateError": "authentication",
    "TopicAuthorizationFailedError": "authorization",
    "GroupAuthorizationFailedError": "authorization",
    "ClusterAuthorizationFailedError": "authorization",
    "SSLCertVerificationError": "tls",  # not any SSLError: a reset handshake is retried
}


def fault_name(error: BaseException) -> str:
    """An exception by its type and the place it was raised (file:line), never its text."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    last = frames[-1]
    return f"{type(error).__name__} at {Path(last.filename).name}:{last.lineno} ({last.name})"


def exception_cause(error: BaseException | None) -> tuple[Cause, str] | None:
    """Whether an exception (or one it was raised from) is a refusal that retrying cannot
    cure: (cause, the refusal's name). aiokafka sometimes wraps the named error in a plain
    `KafkaError("TopicAuthorizationFailedError()")`, so the text counts as well as the type."""
    seen = 0
    while error is not None and seen < 10:
        names = [kind.__name__ for kind in type(error).__mro__]
        names += [name for name in _AIOKAFKA_CAUSES if name in str(error)]
        for name in names:
            if name in _AIOKAFKA_CAUSES:
                return _AIOKAFKA_CAUSES[name], name
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def signal_own_process() -> None:
    """Faust's own graceful stop, as if an operator had sent SIGTERM."""
    os.kill(os.getpid(), signal.SIGTERM)


class FatalStop:
    """Stops the worker once, with the first fatal cause; `reason` says whether it did, and
    `status` is the exit status it asks for.

    `terminate` starts the graceful stop (SIGTERM to this process); `grace` seconds later
    the process exits regardless (None: no such timer, for tests).
    """

    def __init__(
        self,
        settings: Settings,
        terminate: Callable[[], None] = signal_own_process,
        grace: float | None = GRACE,
    ) -> None:
        self.settings = settings
        self.reason: str | None = None
        self.status = EXIT_STATUS
        self._terminate = terminate
        self._grace = grace

    def kafka_error(self, error: KafkaError, topic: str | None = None) -> bool:
        """Stop for a librdkafka error that retrying cannot cure; False for any other."""
        if error.code() in FENCED_CODES:
            self.fenced(error)
            return True
        cause = fatal_cause(error)
        if cause is None and not error.fatal():
            return False
        detail = f"{error.name()}: {error.str()}"
        if topic is not None and error.name() in AUTHORIZATION_CODES:
            detail = f"may not write topic {topic!r} ({detail})"
        if cause is None:  # fatal for librdkafka, of no kind it names (idempotence, say)
            self.stop(f"the Kafka client failed for good ({detail}); retrying cannot cure it")
        else:
            self.stop(describe_failure(cause, detail, self.settings))
        return True

    def error_callback(self, error: KafkaError) -> None:
        """librdkafka's `error_cb` for the output producer."""
        if fatal_cause(error) is not None or error.fatal():
            self.kafka_error(error)

    def fenced(self, error: KafkaError) -> None:
        """Exactly-once: the producer's epoch is not the transactional id's current one: a
        newer producer with this id took over (another worker started with the same instance
        id, or this one was presumed dead), or the transaction coordinator aborted a
        transaction open past its timeout and moved the epoch on (Kafka 4's transactions
        do), a fatal error for librdkafka either way.
        Nothing this worker decided after its last committed transaction is visible to
        read_committed consumers; its successor decides it again."""
        self.stop(
            f"fenced: the broker refused transactional id {self.settings.transactional_id!r} "
            f"an old producer epoch ({error.name()}: {error.str()}): either another worker "
            "took this id (give each running worker its own CLAIMS_INSTANCE_ID), or the "
            "broker aborted a transaction left open longer than CLAIMS_TRANSACTION_TIMEOUT "
            f"({self.settings.transaction_timeout:g} s) while it was unreachable (a restart "
            "begins a new epoch and decides those records again)"
        )

    def refused(self, error: KafkaError, topic: str) -> None:
        """The broker refused an output for good for a reason of the topic's configuration
        (a record it calls invalid, a dead letter over its `max.message.bytes`)."""
        self.stop(
            f"topic {topic!r} refuses the stage's outputs ({error.name()}: {error.str()}); "
            "retrying cannot cure this: check the topic's configuration "
            "(max.message.bytes, cleanup.policy, message.timestamp.*)"
        )

    def fault(self, part: str, error: BaseException) -> None:
        """An exception where none was expected (a bug): stop with status 1, naming it by
        type and place only (its text could quote a record)."""
        self.stop(f"{part} failed: {fault_name(error)}", FAULT_EXIT_STATUS)

    def stop(self, reason: str, status: int = EXIT_STATUS) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        self.status = status
        log.critical("stopping the worker: %s", reason)
        self._terminate()
        if self._grace is not None:
            timer = threading.Timer(self._grace, self._exit_now)
            timer.daemon = True
            timer.start()

    def _exit_now(self) -> None:
        log.critical("the worker did not stop within %.0f s; exiting", self._grace or 0)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(self.status)

    def crashed(self, error: Any) -> bool:
        """After Faust stopped on an exception: record it if it is a fatal refusal."""
        found = exception_cause(error if isinstance(error, BaseException) else None)
        if found is None:
            return False
        cause, name = found
        detail = f"{name}: {error}"
        # Faust's consumer reads one topic with one group: a refusal names one of them.
        if name == "TopicAuthorizationFailedError":
            detail = f"may not read topic {self.settings.input_topic!r} ({name})"
        elif name == "GroupAuthorizationFailedError":
            detail = f"may not use consumer group {self.settings.app_id!r} ({name})"
        if self.reason is None:
            self.reason = describe_failure(cause, detail, self.settings)
            log.critical("the worker stopped: %s", self.reason)
        return True
