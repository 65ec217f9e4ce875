"""Exactly-once on a real broker: with CLAIMS_PROCESSING_GUARANTEE=exactly_once, a
read_committed reader of the output topics sees every input once, neither lost nor
repeated, whatever happens to the worker or the broker mid-stream."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter

import pytest

from stream.kafka.send import send_lines
from tests.stage_kafka import (
    StageDeployment,
    bulk_records,
    covers,
    decided,
    identity,
    read_outputs,
    wait_for,
)

pytestmark = pytest.mark.integration

RECORDS = 2_000
EXACTLY_ONCE = {
    "CLAIMS_PROCESSING_GUARANTEE": "exactly_once",
    # A killed worker leaves no goodbye: the group waits out its session (30 s by default).
    "CLAIMS_SESSION_TIMEOUT": "6",
    # Small batches, so the stream takes many transactions and a fault lands mid-stream.
    "CLAIMS_BATCH_SIZE": "50",
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


def sent(deployment: StageDeployment, count: int = RECORDS) -> set[bytes]:
    records, identities = bulk_records(count)
    assert send_lines(deployment.settings, records).delivered == count
    return identities


def test_sigkill_mid_stream_neither_loses_nor_repeats(deployment: StageDeployment) -> None:
    deployment.worker_env.update(EXACTLY_ONCE)
    deployment.create_topics()
    first, port = started(deployment, "a")
    identities = sent(deployment)
    wait_for(lambda: decided(port) >= RECORDS // 4, 120, "a quarter of the stream decided")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    committed = deployment.committed()

    second, _ = deployment.start_worker(CLAIMS_INSTANCE_ID="a")  # fences what "a" left open
    lost, duplicates = exactly_once(deployment, identities)
    print(f"\nexactly_once, SIGKILL at {committed} committed: {lost} lost, {duplicates} duplicates")
    assert (lost, duplicates) == (0, 0), deployment.logs()
    assert 0 < committed < RECORDS  # the kill was mid-stream
    assert second.poll() is None
