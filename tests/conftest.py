"""Shared fixtures: one Decider per test session (loading ICD-10-CM takes about two seconds),
and, for the integration and operations tests, real Kafka (one node for the session, a
three-node cluster, a secured broker and a lone broker for the modules that ask) and stage
deployments.

The brokers are shared by the session's processes: the first process (pytest-xdist's
controller, or the only one) plans their homes and ports before any test runs, each process
starts those its tests need in the background once they are collected, and the first
process stops them all at the end. Tests without a broker run first, while the JVMs start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from stream.core.decision import Decider
from tests.reference import session_decider
from tests.stage_kafka import (
    BROKERS_ENV,
    SHARED_SHAPES,
    cluster3,
    deployment,
    held_lone_broker,
    kafka,
    lone_broker,
    plan_shared_brokers,
    secure_kafka,
    shared_brokers,
    start_in_background,
    stop_shared_brokers,
    write_plan,
)

__all__ = ["cluster3", "deployment", "held_lone_broker", "kafka", "lone_broker", "secure_kafka"]

BROKER_ROOT = pytest.StashKey[Path]()

SLOW_MODULES = {"test_cluster.py": 3, "test_secure.py": 2, "test_worker.py": 2}
"""Modules that take minutes, started first among the broker tests so that parallel workers
finish together."""


@pytest.fixture(scope="session")
def decider() -> Decider:
    return session_decider()


def pytest_configure(config: pytest.Config) -> None:
    if BROKERS_ENV in os.environ:  # a worker of this session: the plan is made
        return
    root = Path(tempfile.mkdtemp(prefix="claims-stage-brokers-"))
    config.stash[BROKER_ROOT] = root
    os.environ[BROKERS_ENV] = write_plan(plan_shared_brokers(root))


def pytest_unconfigure(config: pytest.Config) -> None:
    root = config.stash.get(BROKER_ROOT, None)
    if root is None:
        return
    stop_shared_brokers(shared_brokers())
    del os.environ[BROKERS_ENV]
    shutil.rmtree(root, ignore_errors=True)


def _needs_a_broker(item: pytest.Item) -> bool:
    return any(name in SHARED_SHAPES for name in getattr(item, "fixturenames", ()))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable: the order within a module is kept.
    items.sort(key=lambda item: (_needs_a_broker(item), -SLOW_MODULES.get(item.path.name, 0)))


def pytest_collection_finish(session: pytest.Session) -> None:
    start_in_background(
        {name for item in session.items for name in getattr(item, "fixturenames", ())}
    )
