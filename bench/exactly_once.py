"""Exactly-once through crashes, in numbers: `make bench-eos`.

    python -m bench.exactly_once [--claims 20000] [--modes exactly_once at_least_once]
                                 [--port 29092] [--controller-port 29193]
                                 [--cluster-port 29300] [--no-cluster]

Private brokers under var/bench-eos/ on the ports given (one node; three nodes on
`--cluster-port` and the two after it, controllers 50 above). In each mode, on the same
claims, each preloaded into a fresh 6-partition topic:

1. one node: a worker drains the claims; once a quarter are decided, SIGKILL; a worker
   under the same instance id starts again and drains the rest;
2. three nodes: a worker drains the claims; once a quarter are decided, SIGKILL of the
   node that leads the most input partitions; the worker goes on; the node is restarted.

Then a read_committed reader of the output topics counts, per input record (its source
partition and offset): lost (no output) and duplicates (outputs beyond the first); a
read_uncommitted reader too, which also sees the outputs of aborted transactions. Nothing
here asserts: it prints the counts and the load average, and writes them to a JSON file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.claims import write_claims
from bench.decide import write_figures
from bench.stage import Topics, create_bench_topics, free_port, preload, worker_env
from stream.kafka import clients
from stream.kafka.local.cluster import LocalCluster
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "var" / "bench-eos"
SESSION_TIMEOUT = "10"
"""The killed worker's session: how long the group waits before its partitions move."""

Fault = Callable[["Run"], str]


class Run:
    """One mode on one cluster: its topics, its worker, and what the readers count."""

    def __init__(self, cluster: LocalCluster, mode: str, claims: list[bytes], logs: Path) -> None:
        self.cluster = cluster
        self.mode = mode
        self.claims = claims
        self.logs = logs
        self.settings: Settings = Topics().settings(cluster.bootstrap, mode)
        self.port = 0
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        self.port = free_port()
        env = worker_env(self.settings, self.port, self.mode, 0)  # instance 0, every time
        env["CLAIMS_SESSION_TIMEOUT"] = SESSION_TIMEOUT
        with (self.logs / f"{self.settings.app_id}.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "stream", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def decided(self) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        return sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith(("claims_decisions_total{", "claims_dead_letters_total{"))
        )

    def wait_decided(self, count: float, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.decided() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.mode}: {count:,.0f} decisions not reached in time")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(timeout=60)


def counts(settings: Settings, expected: int, isolation: str, timeout: float) -> dict[str, int]:
    """Read every output (from the start) until each input has one and 3 s more: lost and
    duplicate outputs per input record."""
    consumer = clients.consumer(
        settings,
        f"count-{uuid.uuid4().hex[:6]}",
        **{"auto.offset.reset": "earliest", "isolation.level": isolation},
    )
    consumer.subscribe([settings.validated_topic, settings.rejected_topic, settings.dlq_topic])
    seen: Counter[tuple[int, int]] = Counter()
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
            for message in consumer.consume(num_messages=2000, timeout=0.5):
                if message.error() is None:
                    source = orjson.loads(message.value() or b"{}")["source"]
                    seen[(source["partition"], source["offset"])] += 1
            if settle is None and len(seen) >= expected:
                settle = time.monotonic() + 3.0
    finally:
        consumer.close()
    return {
        "outputs": sum(seen.values()),
        "lost": expected - len(seen),
        "duplicates": sum(seen.values()) - len(seen),
    }


def through(run: Run, fault: Fault) -> dict[str, Any]:
    """Preload the claims, start the worker, inject the fault at a quarter, read it all."""
    create_bench_topics(run.settings)
    preload(run.settings, run.claims)
    run.start_worker()
    began = time.monotonic()
    try:
        run.wait_decided(len(run.claims) // 4)
        what = fault(run)
        committed = counts(run.settings, len(run.claims), "read_committed", timeout=600)
        uncommitted = counts(run.settings, len(run.claims), "read_uncommitted", timeout=60)
    finally:
        run.stop()
    return {
        "fault": what,
        "seconds": round(time.monotonic() - began, 1),
        "read_committed": committed,
        "read_uncommitted": uncommitted,
    }


def kill_the_worker(run: Run) -> str:
    assert run.worker is not None
    decided = run.decided()
    run.worker.send_signal(signal.SIGKILL)
    run.worker.wait(timeout=30)
    run.start_worker()  # the same instance id: fences what the killed one left open
    return f"SIGKILL of the worker after {decided:,.0f} decisions; restarted"


def kill_the_busiest_leader(run: Run) -> str:
    settings = run.settings
    metadata = clients.admin(settings).list_topics(settings.input_topic, timeout=10)
    partitions = metadata.topics[settings.input_topic].partitions
    leaders = Counter(p.leader for p in partitions.values())
    node, led = leaders.most_common(1)[0]
    pid = run.cluster.node(node).our_pid()
    if pid is None:
        raise RuntimeError(f"node {node} is not running")
    decided = run.decided()
    os.kill(pid, signal.SIGKILL)
    time.sleep(10.0)  # fenced after 6 s: its partitions get new leaders
    run.cluster.start(timeout=180)
    return (
        f"SIGKILL of node {node} (leader of {led} of {len(partitions)} input partitions) "
        f"after {decided:,.0f} decisions; restarted 10 s later"
    )


def clusters(args: argparse.Namespace) -> list[tuple[str, LocalCluster, Fault]]:
    one = LocalCluster(
        HOME / "one", nodes=1, ports=[args.port], controller_ports=[args.controller_port]
    )
    found: list[tuple[str, LocalCluster, Fault]] = [("one node", one, kill_the_worker)]
    if not args.no_cluster:
        ports = [args.cluster_port + n for n in range(3)]
        three = LocalCluster(
            HOME / "three", nodes=3, ports=ports, controller_ports=[p + 50 for p in ports]
        )
        found.append(("three nodes", three, kill_the_busiest_leader))
    return found


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--modes", nargs="+", default=["exactly_once", "at_least_once"])
    parser.add_argument("--port", type=int, default=29092)
    parser.add_argument("--controller-port", type=int, default=29193)
    parser.add_argument("--cluster-port", type=int, default=29300)
    parser.add_argument("--no-cluster", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("out/bench-exactly-once.json"))
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="claims-bench-eos-"))
    claims = write_claims(scratch / "claims.jsonl", args.claims).read_bytes().splitlines()
    results: dict[str, Any] = {"claims": len(claims), "load_average_before": os.getloadavg()}
    print(f"{len(claims):,} claims; worker logs in {scratch}")
    print(
        "| where | mode | fault | read_committed: lost, duplicates | read_uncommitted: duplicates |"
    )
    print("|---|---|---|---|---|")
    for where, cluster, fault in clusters(args):
        cluster.start(timeout=180)
        try:
            for mode in args.modes:
                outcome = through(Run(cluster, MODE_NAMES[mode], claims, scratch), fault)
                results[f"{where}, {mode}"] = outcome
                rc, ru = outcome["read_committed"], outcome["read_uncommitted"]
                print(
                    f"| {where} | {mode} | {outcome['fault']} | {rc['lost']}, "
                    f"{rc['duplicates']} | {ru['duplicates']} |",
                    flush=True,
                )
        finally:
            cluster.stop()
    results["load_average_after"] = os.getloadavg()
    print(
        "load average before: {:.2f}, {:.2f}, {:.2f}; after: {:.2f}, {:.2f}, {:.2f}".format(
            *results["load_average_before"], *results["load_average_after"]
        )
    )
    write_figures(args.json, results)
    return results


MODE_NAMES = {"exactly_once": "exactly_once", "at_least_once": "librdkafka"}
"""The processing guarantee, by bench.stage.MODES's name for it (both on librdkafka)."""


if __name__ == "__main__":
    main()
