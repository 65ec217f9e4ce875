"""Exactly-once on a real broker: with CLAIMS_PROCESSING_GUARANTEE=exactly_once, a
read_committed reader of the output topics sees every input once, neither lost nor
repeated, whatever happens to the worker or the broker mid-stream."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.kafka.local.cluster import LocalBroker
from tests.stage_kafka import (
    RATE,
    Feeder,
    StageDeployment,
    bulk_records,
    covers,
    decided,
    identity,
    read_outputs,
    wait_for,
)

pytestmark = pytest.mark.integration

SUPPLY = 20_000
"""Records a feeder may send: more than it sends before the test stops it."""
EXACTLY_ONCE = {
    "CLAIMS_PROCESSING_GUARANTEE": "exactly_once",
    # A killed worker leaves no goodbye: the group waits out its session (30 s by default).
    "CLAIMS_SESSION_TIMEOUT": "6",
    # A transaction's calls wait at most 10 s (30 s by default), and the watchdog 10 s more.
    "CLAIMS_TRANSACTION_TIMEOUT": "10",
}


def exactly_once(deployment: StageDeployment, identities: set[bytes]) -> tuple[int, int]:
    """(lost, duplicates) as a read_committed reader of the output topics sees them."""
    outputs = read_outputs(deployment, len(identities), timeout=180, until=covers(identities))
    seen = Counter(identity(r) for r in outputs)
    lost = len(identities - set(seen))
    duplicates = sum(seen.values()) - len(seen)
    return lost, duplicates


def started(deployment: StageDeployment, instance: str) -> tuple[subprocess.Popen[bytes], int]:
    worker, port = deployment.start_worker(CLAIMS_INSTANCE_ID=instance)
    deployment.wait_healthy(port)
    return worker, port


def test_sigkill_mid_stream_neither_loses_nor_repeats(deployment: StageDeployment) -> None:
    """A worker killed while the stream flows, restarted under the same instance id: the
    transaction it left open is aborted, its records decided again, and nothing it had
    committed is decided twice (at-least-once repeats what it stored since the last commit)."""
    deployment.worker_env.update(EXACTLY_ONCE)
    deployment.create_topics()
    first, port = started(deployment, "a")
    feeder = Feeder(deployment.settings, rate=2 * RATE, records=bulk_records(SUPPLY)[0])
    feeder.start()
    wait_for(lambda: decided(port) >= 3 * RATE, 60, "the stream to flow")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    second, second_port = deployment.start_worker(CLAIMS_INSTANCE_ID="a")  # fences "a"'s
    wait_for(lambda: decided(second_port) > 0, 60, "the restarted worker to decide")
    identities = feeder.stop()
    lost, duplicates = exactly_once(deployment, identities)
    print(f"\nexactly_once, SIGKILL mid-stream: {lost} lost, {duplicates} duplicates")
    assert (lost, duplicates) == (0, 0), deployment.logs()
    assert second.poll() is None


def test_a_worker_joining_and_leaving_neither_loses_nor_repeats(
    deployment: StageDeployment,
) -> None:
    """Two rebalances mid-stream: each commits (or aborts) the open transaction before the
    partitions move."""
    deployment.worker_env.update(EXACTLY_ONCE)
    deployment.create_topics()
    first, first_port = started(deployment, "a")
    feeder = Feeder(deployment.settings, rate=2 * RATE, records=bulk_records(SUPPLY)[0])
    feeder.start()
    wait_for(lambda: decided(first_port) >= 2 * RATE, 60, "the stream to flow")
    second, second_port = started(deployment, "b")  # joins: half the partitions move
    wait_for(lambda: decided(second_port) > 0, 60, "the second worker to decide")
    first.send_signal(signal.SIGTERM)  # leaves: its partitions move to the second
    assert first.wait(timeout=60) == 0, deployment.logs()
    moved = decided(second_port)
    wait_for(lambda: decided(second_port) > moved, 60, "the second worker to go on")
    identities = feeder.stop()

    lost, duplicates = exactly_once(deployment, identities)
    print(f"\nexactly_once, a worker joined and left: {lost} lost, {duplicates} duplicates")
    assert (lost, duplicates) == (0, 0), deployment.logs()
    assert second.poll() is None


@pytest.fixture
def lone_deployment(held_lone_broker: LocalBroker, tmp_path: Path) -> Iterator[StageDeployment]:
    stage = StageDeployment(bootstrap=held_lone_broker.bootstrap, workdir=tmp_path)
    yield stage
    stage.stop_all()


def test_a_broker_restart_neither_loses_nor_repeats(
    held_lone_broker: LocalBroker, lone_deployment: StageDeployment
) -> None:
    """The only broker stops mid-stream and comes back: transactions open at the stop are
    aborted (by the broker, or by the worker when its commit fails) and decided again."""
    deployment = lone_deployment
    deployment.worker_env.update(EXACTLY_ONCE)
    deployment.create_topics()
    worker, port = started(deployment, "a")
    feeder = Feeder(deployment.settings, rate=2 * RATE, records=bulk_records(SUPPLY)[0])
    feeder.start()
    wait_for(lambda: decided(port) >= 2 * RATE, 60, "the stream to flow")
    assert held_lone_broker.stop() is True
    time.sleep(2.0)
    held_lone_broker.start(timeout=120)
    time.sleep(2.0)  # the stream goes on after the restart
    identities = feeder.stop()

    def drained() -> bool:
        return worker.poll() is not None or deployment.committed() >= len(identities)

    wait_for(drained, 120, "every input committed, or the worker stopped")
    if worker.poll() is not None:
        # The documented stops, each cured by a restart under the same instance id (what a
        # supervisor does): librdkafka blocked in send_offsets_to_transaction once the
        # group's coordinator went away (confluentinc/librdkafka#5456), or could not abort
        # the failed transaction, status 1; or the broker, back, aborted the transaction it
        # found open past CLAIMS_TRANSACTION_TIMEOUT and moved the producer's epoch on,
        # which librdkafka calls fenced, status 2.
        log = " ".join(deployment.log_of(0).split())
        stops = {
            (1, "transactional call did not return"),
            (1, "could not be aborted"),
            (2, "CLAIMS_TRANSACTION_TIMEOUT"),
        }
        assert any(worker.returncode == status and phrase in log for status, phrase in stops), (
            deployment.logs()
        )
        worker, port = started(deployment, "a")
    lost, duplicates = exactly_once(deployment, identities)
    print(f"\nexactly_once, broker restarted: {lost} lost, {duplicates} duplicates")
    assert (lost, duplicates) == (0, 0), deployment.logs()
    assert worker.poll() is None, deployment.logs()
