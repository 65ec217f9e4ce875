"""The stage on a three-node cluster: brokers fail, restart and freeze while it runs.

One cluster for the module (KRaft, three combined nodes on free ports). Each test feeds its
own topics at a steady rate from a thread, injects the fault while the worker decides, and
then reads every output: every input decided, none lost, and a duplicate only where an input
was redone after its output was stored but before its offset was committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from stream.kafka import clients
from stream.kafka.local.cluster import LocalCluster
from stream.kafka.topics import stage_topics
from stream.settings import Settings
from tests.stage_kafka import (
    HOST,
    RATE,
    ROOT,
    Feeder,
    Record,
    StageDeployment,
    covers,
    decided,
    identity,
    read_outputs,
    wait_for,
)

pytestmark = pytest.mark.integration

SESSION_TIMEOUT = 8.0
"""The worker's consumer-group session timeout here (default 30 s): faults outlast it."""
FENCED = 8.0
"""Seconds after which a silent node is fenced (broker.session.timeout.ms = 6 s) and its
partitions have new leaders."""
LIVENESS = 120.0
"""Seconds a fault may keep the stage from deciding before a test calls it stuck: a bound on
"never", not a speed target (a busy machine may take tens of seconds to re-elect leaders and
rejoin the group)."""


@pytest.fixture
def deployment3(cluster3: LocalCluster, tmp_path: Path) -> Iterator[StageDeployment]:
    stage = StageDeployment(
        bootstrap=cluster3.bootstrap,
        workdir=tmp_path,
        worker_env={"CLAIMS_SESSION_TIMEOUT": str(SESSION_TIMEOUT)},
    )
    _make_whole(cluster3, stage.settings)
    yield stage
    stage.stop_all()


def _make_whole(cluster: LocalCluster, settings: Settings) -> None:
    """Every node running, answering and in sync before a test begins, whatever the test
    before it left behind: one that fails midway leaves its node killed or frozen, and the
    next fault would then take the cluster below two in-sync replicas."""
    for node in cluster.nodes:
        pid = node.our_pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
    cluster.start(timeout=120)
    wait_for(lambda: _fully_replicated(settings), LIVENESS, "every node in sync before the test")


def _cli(cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    env |= {
        "CLAIMS_LOCAL_BROKER_HOME": str(cluster.home),
        "CLAIMS_KAFKA_BOOTSTRAP": cluster.bootstrap,
    }
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _fully_replicated(settings: Settings) -> bool:
    """Every partition of every topic (the group's offsets too) has all its replicas in sync."""
    try:
        metadata = clients.admin(settings).list_topics(timeout=5)
    except Exception:
        return False
    return len(metadata.brokers) == 3 and all(
        len(p.isrs) == len(p.replicas)
        for topic in metadata.topics.values()
        for p in topic.partitions.values()
    )


Fault = Callable[[LocalCluster, StageDeployment, int], str]


@dataclass
class Outcome:
    sent: int
    outputs: int
    lost: int
    duplicates: int
    seconds: float


def _through(cluster: LocalCluster, deployment: StageDeployment, faults: list[Fault]) -> Outcome:
    """Run the stage while each fault happens in turn; check every input came out."""
    began = time.monotonic()
    deployment.create_topics()
    worker, port = deployment.start_worker()
    deployment.wait_healthy(port)
    feeder = Feeder(deployment.settings)
    feeder.start()
    try:
        wait_for(lambda: decided(port) >= 3 * RATE, 60, "the stream to flow")
        committed_before = deployment.committed_offsets()
        for fault in faults:
            started = time.monotonic()
            what = fault(cluster, deployment, port)
            print(f"\n{what} ({time.monotonic() - started:.1f} s)")
            assert worker.poll() is None, deployment.logs()
        time.sleep(2.0)  # the stream goes on after the last fault
    finally:
        sent = feeder.stop()  # a failed test leaves no thread writing

    outputs = read_outputs(deployment, len(sent), timeout=240, until=covers(sent))
    answered = {identity(record) for record in outputs}
    lost = sent - answered
    assert not lost, f"{len(lost)} of {len(sent)} records lost\n{deployment.logs()}"
    assert answered == sent  # nothing came out that was not sent
    # Copies are outputs of one input record (partition and offset). The feeder's own
    # producer may write a record twice while brokers restart: those are two input
    # records, each with its own output, not a duplicate of the stage's.
    by_input: dict[tuple[int, int], list[Record]] = defaultdict(list)
    for record in outputs:
        source = record.source
        by_input[(source["partition"], source["offset"])].append(record)
    duplicates = 0
    for copies in by_input.values():
        if len(copies) < 2:
            continue
        duplicates += len(copies) - 1
        first = _without_times(copies[0].document)
        for copy in copies[1:]:
            # A redone input: the same decision of the same input record ...
            assert _without_times(copy.document) == first
        # ... redone from an offset the group had not committed before the faults.
        source = copies[0].source
        assert source["offset"] >= committed_before[source["partition"]]

    ok, health = _healthz(port)
    assert ok == 200, health
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, deployment.logs()
    outcome = Outcome(len(sent), len(outputs), len(lost), duplicates, time.monotonic() - began)
    print(
        f"{outcome.sent} records sent at {RATE:.0f}/s, {outcome.outputs} outputs: "
        f"{outcome.lost} lost, {outcome.duplicates} duplicates ({outcome.seconds:.0f} s)"
    )
    return outcome


def _without_times(document: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in document.items() if k not in ("decided_at", "received_at")}


def _pid(cluster: LocalCluster, node: int) -> int:
    pid = cluster.node(node).our_pid()
    assert pid is not None, f"node {node} is not running"
    return pid


# ---------------------------------------------------------------- the cluster itself


def test_three_nodes_report_their_status_and_topics_get_three_replicas(
    cluster3: LocalCluster, deployment3: StageDeployment
) -> None:
    status = _cli(cluster3, "broker", "status", "--json")
    assert status.returncode == 0, status.stderr
    nodes = json.loads(status.stdout)
    assert [(n["node"], n["port"]) for n in nodes] == [(n.id, n.port) for n in cluster3.nodes]
    assert [n["port"] for n in nodes] == [n.port for n in cluster3.nodes]
    assert all(n["pid"] == cluster3.node(n["node"]).our_pid() for n in nodes)

    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_")}
    created = subprocess.run(
        [sys.executable, "-m", "stream", "topics", "create"],
        env=env | deployment3.stage_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    every_topic = len(stage_topics(deployment3.settings))
    assert created.stdout.count("3 replicas (min in-sync 2)") == every_topic, created.stdout

    settings = deployment3.settings
    admin = clients.admin(settings)
    topics = admin.list_topics(timeout=10).topics
    outputs = [settings.validated_topic, settings.rejected_topic, settings.dlq_topic]
    for name in [settings.input_topic, *outputs]:
        assert {len(p.replicas) for p in topics[name].partitions.values()} == {3}
        resource = ConfigResource(ResourceType.TOPIC, name)
        config = admin.describe_configs([resource])[resource].result(10)
        assert config["min.insync.replicas"].value == "2"


# ---------------------------------------------------------------- faults while the stage runs


def _coordinator(settings: Settings) -> int:
    """The node coordinating the stage's consumer group."""
    admin = clients.admin(settings)
    deadline = time.monotonic() + 60
    while True:
        future = admin.describe_consumer_groups([settings.app_id], request_timeout=10)
        try:
            coordinator: int = future[settings.app_id].result(15).coordinator.id
            return coordinator
        except Exception:  # the coordinator moves or loads: ask again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _busiest_leader(settings: Settings) -> tuple[int, str]:
    """The node leading most input partitions."""
    metadata = clients.admin(settings).list_topics(settings.input_topic, timeout=10)
    partitions = metadata.topics[settings.input_topic].partitions
    node, led = Counter(p.leader for p in partitions.values()).most_common(1)[0]
    return node, f"leader of {led} of {len(partitions)} input partitions"


def _group_coordinator(settings: Settings) -> tuple[int, str]:
    return _coordinator(settings), "the group's coordinator"


def _kill(choose: Callable[[Settings], tuple[int, str]]) -> Fault:
    """SIGKILL of the node `choose` names; decisions must go on once it is fenced. The node
    is restarted whatever happens."""

    def kill(cluster: LocalCluster, deployment: StageDeployment, port: int) -> str:
        settings = deployment.settings
        node, role = choose(settings)
        killed = time.monotonic()
        os.kill(_pid(cluster, node), signal.SIGKILL)
        try:
            time.sleep(FENCED + 2)
            # With one of three nodes gone, two replicas still take every write: the stage
            # goes on. A decision counted after the fence proves it; how soon is printed.
            fenced = decided(port)
            wait_for(
                lambda: decided(port) > fenced,
                LIVENESS,
                f"a decision while node {node} is down",
                deployment.logs,
            )
            again = time.monotonic() - killed
        finally:
            restarting = time.monotonic()
            cluster.start(timeout=120)
            restart = time.monotonic() - restarting
        wait_for(lambda: _fully_replicated(settings), LIVENESS, "the restarted node to catch up")
        return (
            f"SIGKILL of node {node}, {role}; decisions after the fence {again:.1f} s after "
            f"the kill; restarted in {restart:.1f} s"
        )

    return kill


def test_sigkill_of_the_leader_of_most_input_partitions_loses_nothing(
    cluster3: LocalCluster, deployment3: StageDeployment
) -> None:
    outcome = _through(cluster3, deployment3, [_kill(_busiest_leader)])
    assert outcome.lost == 0


def test_exactly_once_through_the_sigkill_of_the_group_coordinator(
    cluster3: LocalCluster, deployment3: StageDeployment
) -> None:
    """With exactly_once, a read_committed reader sees no input twice: no duplicate, not
    even of an input redone after its output was stored. The group's coordinator is the
    node to lose here: the transaction sends its offsets there, and the node leads input
    and output partitions too. The worker must keep going (librdkafka's wait for a
    decommissioned coordinator, `stream.worker.outputs.transactional`)."""
    deployment3.worker_env["CLAIMS_PROCESSING_GUARANTEE"] = "exactly_once"
    outcome = _through(cluster3, deployment3, [_kill(_group_coordinator)])
    assert (outcome.lost, outcome.duplicates) == (0, 0)


def _rolling_restart(cluster: LocalCluster, deployment: StageDeployment, port: int) -> str:
    """As an operator upgrades a cluster: one node at a time, each back in sync first. The
    first through the command line, as an operator would; the others through the API."""
    times = []
    for node in cluster.nodes:
        started = time.monotonic()
        if node.id == 1:
            stopped = _cli(cluster, "broker", "stop", "--node", "1")
            assert stopped.returncode == 0, stopped.stderr
            assert "stopped node 1" in stopped.stdout
            assert _cli(cluster, "broker", "status").returncode == 1  # one node down
            restarted = _cli(cluster, "broker", "start")  # starts the node that is down
            assert restarted.returncode == 0, restarted.stderr
        else:
            assert cluster.stop(node=node.id)
            cluster.start(timeout=120)
        wait_for(lambda: _fully_replicated(deployment.settings), LIVENESS, "the node to catch up")
        times.append(time.monotonic() - started)
    return "rolling restart of nodes 1, 2, 3: " + ", ".join(f"{t:.1f} s" for t in times)


def test_rolling_restart_of_all_three_nodes_loses_nothing(
    cluster3: LocalCluster, deployment3: StageDeployment
) -> None:
    outcome = _through(cluster3, deployment3, [_rolling_restart])
    assert outcome.lost == 0


def _freeze_the_group_coordinator(
    cluster: LocalCluster, deployment: StageDeployment, port: int
) -> str:
    settings = deployment.settings
    node = _coordinator(settings)
    pid = _pid(cluster, node)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(SESSION_TIMEOUT + 4)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _fully_replicated(settings), LIVENESS, "the frozen node to catch up")
    return f"SIGSTOP of node {node} (the group's coordinator) for {SESSION_TIMEOUT + 4:.0f} s"


def _freeze_the_whole_cluster(cluster: LocalCluster, deployment: StageDeployment, port: int) -> str:
    """No broker answers: /healthz says so once that outlasts the session timeout."""
    wait_for(lambda: _healthz(port)[0] == 200, 60, "/healthz at 200 before the freeze")
    pids = [_pid(cluster, node.id) for node in cluster.nodes]
    frozen = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:

        def unreachable() -> dict[str, Any] | None:
            status, health = _healthz(port)
            return (
                health if status == 503 and "Kafka unreachable" in str(health["reason"]) else None
            )

        health = wait_for(unreachable, LIVENESS, "/healthz to say Kafka unreachable")
        unhealthy_after = time.monotonic() - frozen
        assert unhealthy_after > SESSION_TIMEOUT  # not before the group itself gives up
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    wait_for(lambda: _healthz(port)[0] == 200, LIVENESS, "/healthz to recover")
    wait_for(lambda: _fully_replicated(deployment.settings), LIVENESS, "the cluster to settle")
    return (
        f"SIGSTOP of all three nodes: /healthz 503 after {unhealthy_after:.1f} s "
        f"({health['reason']}), 200 {time.monotonic() - frozen:.1f} s after the freeze began"
    )


def test_a_node_frozen_longer_than_the_session_timeout_then_the_whole_cluster(
    cluster3: LocalCluster, deployment3: StageDeployment
) -> None:
    outcome = _through(
        cluster3, deployment3, [_freeze_the_group_coordinator, _freeze_the_whole_cluster]
    )
    assert outcome.lost == 0
