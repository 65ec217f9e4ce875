"""Shared fixtures: one Decider per test session (loading ICD-10-CM takes about two seconds),
and, for the integration and operations tests, real Kafka (one node for the session, a
three-node cluster and a secured broker for the modules that ask) and stage deployments."""

from __future__ import annotations

import pytest

from stream.core.decision import Decider
from tests.reference import session_decider
from tests.stage_kafka import cluster3, deployment, kafka, secure_kafka

__all__ = ["cluster3", "deployment", "kafka", "secure_kafka"]


@pytest.fixture(scope="session")
def decider() -> Decider:
    return session_decider()
