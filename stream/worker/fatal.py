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
from typing import Any

from confluent_kafka import KafkaError

from stream.kafka.access import AUTHORIZATION_CODES, Cause, describe_failure, fatal_cause
from stream.settings import Settings

log = logging.getLogger("claims_stage.worker")

EXIT_STATUS = 2
GRACE = 5.0
"""Seconds the graceful stop may take before the process exits regardless."""

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


class FatalStop:
    """Stops the worker once, with the first fatal cause; `reason` says whether it did."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reason: str | None = None

    def kafka_error(self, error: KafkaError, topic: str | None = None) -> bool:
        """Stop for a librdkafka error that retrying cannot cure; False for any other."""
        cause = fatal_cause(error)
        if cause is None and not error.fatal():
            return False
        detail = f"{error.name()}: {error.str()}"
        if topic is not None and error.name() in AUTHORIZATION_CODES:
            detail = f"may not write topic {topic!r} ({detail})"
        self.stop(describe_failure(cause or "authorization", detail, self.settings))
        return True

    def error_callback(self, error: KafkaError) -> None:
        """librdkafka's `error_cb` for the output producer."""
        if fatal_cause(error) is not None or error.fatal():
            self.kafka_error(error)

    def stop(self, reason: str) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        log.critical("stopping the worker: %s", reason)
        # Faust's own graceful stop, as if an operator had sent SIGTERM.
        os.kill(os.getpid(), signal.SIGTERM)
        timer = threading.Timer(GRACE, self._exit_now)
        timer.daemon = True
        timer.start()

    def _exit_now(self) -> None:
        log.critical("the worker did not stop within %.0f s; exiting", GRACE)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(EXIT_STATUS)

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
