"""Shared fixtures: one Decider per test session (loading ICD-10-CM takes about two seconds),
and, for the integration and operations tests, a real Kafka broker and stage deployments."""

from __future__ import annotations

import pytest

from stream.core.decision import Decider
from tests.stage_kafka import deployment, kafka

__all__ = ["deployment", "kafka"]


@pytest.fixture(scope="session")
def decider() -> Decider:
    return Decider()
