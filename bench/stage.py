"""The stage against the physical limit of this broker and this Python.

    python -m bench.stage [--records 200000] [--repeats 3] [--workers 1 2]

On the local broker (started if it is not running), preloads a realistic mix of records
(the example stream, every event with unique IDs, malformed lines included) into a fresh
input topic of 6 partitions, then measures, each measure repeated and the median kept:

(a) passthrough: a raw confluent-kafka consume-then-produce loop, no decoding: the limit
    for a Python stage on this broker;
(b) decide-only: `decide` over the same records in one process, no Kafka;
(c) the stage: worker processes draining the topic (one, then more in one consumer
    group), records/s from the first output's timestamp to the last, and peak RSS;
(d) latency: one worker fed at half of (c)'s rate, end-to-end p50/p95/p99 from each input
    record's Kafka timestamp to its output's;
(e) Faust's own ceiling, on each transport: a bare agent that only acknowledges each
    record, then the same with the stage's Prometheus sensor, then with `decide` but no
    output.

It prints a table with the ratios stage/passthrough and stage/decide-only and writes the
figures to a JSON file. Nothing here asserts a speed: it measures.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from bench.decide import write_figures
from stream.cli.batch import read_lines
from stream.cli.common import freeze_long_lived_objects
from stream.core.contracts import KafkaSource
from stream.core.decision import Decider
from stream.kafka import clients
from stream.kafka.local.cluster import LocalCluster, default_home
from stream.kafka.send import key_of
from stream.kafka.topics import create_topics, replication
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "schemas" / "examples" / "encounters.jsonl"
PARTITIONS = 6


def realistic_records(count: int) -> list[bytes]:
    """The example stream, cycled: events get unique IDs, malformed lines stay as they are."""
    with EXAMPLES.open("rb") as source:
        lines = list(read_lines(source))
    records: list[bytes] = []
    n = 0
    while len(records) < count:
        for line in lines:
            if len(records) >= count:
                break
            try:
                document = orjson.loads(line)
            except orjson.JSONDecodeError:
                records.append(line)
                continue
            if isinstance(document, dict) and "event_id" in document:
                document["event_id"] = f"{document['event_id']}-{n}"
                if isinstance(document.get("claim_id"), str):
                    document["claim_id"] = f"{document['claim_id']}-{n}"
                records.append(orjson.dumps(document))
            else:
                records.append(line)
            n += 1
    return records


@dataclass
class Topics:
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:6]}")

    def settings(self, bootstrap: str, run: str) -> Settings:
        return Settings(
            kafka_bootstrap=bootstrap,
            input_topic=f"{self.prefix}-in",
            validated_topic=f"{self.prefix}-{run}-validated",
            rejected_topic=f"{self.prefix}-{run}-rejected",
            dlq_topic=f"{self.prefix}-{run}-dlq",
            app_id=f"{self.prefix}-{run}",
            partitions=PARTITIONS,
        )


def preload(
    settings: Settings, records: list[bytes], rate: float | None = None
) -> dict[tuple[int, int], float]:
    """Produce every record, at `rate` records/s if given, else as fast as possible.

    Returns (partition, offset) -> the record's Kafka timestamp in seconds.
    """
    stamps: dict[tuple[int, int], float] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            stamps[(message.partition() or 0, message.offset() or 0)] = (
                message.timestamp()[1] / 1000
            )

    # Paced records go out at once, so their timestamps measure the stage alone.
    producer = clients.producer(
        settings, **{"linger.ms": 1 if rate else 20, "batch.size": 1_000_000}
    )
    # Connected before the first record: a record's timestamp is taken when it is produced,
    # so a producer still fetching metadata would charge its own start to the stage.
    producer.list_topics(settings.input_topic, timeout=30)
    started = time.perf_counter()
    for n, record in enumerate(records):
        if rate:
            ahead = started + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        while True:
            try:
                producer.produce(
                    settings.input_topic, value=record, key=key_of(record), on_delivery=delivered
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush()
    return stamps


def create_bench_topics(settings: Settings) -> None:
    """The stage's topics; outputs stamped by the broker on arrival (LogAppendTime), so an
    output's timestamp is when it was stored, not when the worker handed it over."""
    admin = clients.admin(settings)
    outputs = [settings.validated_topic, settings.rejected_topic, settings.dlq_topic]
    factor, min_insync = replication(settings, len(admin.list_topics(timeout=30).brokers))
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=PARTITIONS,
                replication_factor=factor,
                config={
                    "message.timestamp.type": "LogAppendTime",
                    "min.insync.replicas": str(min_insync),
                },
            )
            for name in outputs
        ]
    )
    for future in futures.values():
        future.result()
    create_topics(settings)


def passthrough(settings: Settings, topic: str, count: int) -> float:
    """(a) consume every record and produce it unchanged: records/s, first read to last ack."""
    target = f"{topic}-passthrough-{uuid.uuid4().hex[:6]}"
    # The broker does not auto-create topics; an unknown topic would stall every send.
    admin = clients.admin(settings)
    factor, _ = replication(settings, len(admin.list_topics(timeout=30).brokers))
    admin.create_topics([NewTopic(target, num_partitions=PARTITIONS, replication_factor=factor)])[
        target
    ].result()
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    consumer = clients.consumer(
        settings, f"passthrough-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"}
    )
    producer = clients.producer(settings, **{"batch.size": 1_000_000})
    consumer.subscribe([topic])
    done = 0
    started: float | None = None
    while done < count:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error():
                continue
            if started is None:
                started = time.perf_counter()
            while True:
                try:
                    producer.produce(
                        target, value=message.value(), key=message.key(), on_delivery=delivered
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            done += 1
        producer.poll(0)
    producer.flush()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    if failures:
        raise RuntimeError(f"passthrough: {len(failures)} sends failed, first: {failures[0]}")
    return count / elapsed


def decide_only(records: Sequence[bytes]) -> float:
    """(b) decide every record in this process: records/s."""
    stage = Decider()
    freeze_long_lived_objects()
    source = KafkaSource(topic="bench", partition=0, offset=0)
    for record in records[:2000]:  # warm the code caches, as a running worker has them
        stage.decide(record, source)
    started = time.perf_counter()
    for record in records:
        stage.decide(record, source)
    return len(records) / (time.perf_counter() - started)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_bootstrap() -> str:
    """The broker the settings name, or the local cluster as it was formatted (one node, or
    three with `claims-stage broker start --nodes 3`), started when it is not running."""
    settings = Settings()
    if settings.broker_configured:
        return settings.kafka_bootstrap
    return LocalCluster(settings.local_broker_home or default_home()).start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


MODES: dict[str, dict[str, str]] = {
    "librdkafka": {"CLAIMS_TRANSPORT": "librdkafka"},
    "exactly_once": {
        "CLAIMS_TRANSPORT": "librdkafka",
        "CLAIMS_PROCESSING_GUARANTEE": "exactly_once",
    },
    "aiokafka": {"CLAIMS_TRANSPORT": "aiokafka"},
}
"""How a worker runs: at-least-once on librdkafka (the default), exactly-once on librdkafka,
at-least-once on Faust's aiokafka."""


def worker_env(
    settings: Settings, port: int, transport: str | None = None, instance: int = 0
) -> dict[str, str]:
    """A worker's environment: these topics and group, its web port, and how it runs
    (`transport`: a name of MODES; by default what the environment or the settings say).
    Each worker of a group gets its own instance id (exactly-once: its transactional id)."""
    chosen = MODES.get(transport, {"CLAIMS_TRANSPORT": transport}) if transport else {}
    return {
        **os.environ,
        **chosen,
        "CLAIMS_INSTANCE_ID": f"{settings.app_id}-{instance}",
        "CLAIMS_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CLAIMS_INPUT_TOPIC": settings.input_topic,
        "CLAIMS_VALIDATED_TOPIC": settings.validated_topic,
        "CLAIMS_REJECTED_TOPIC": settings.rejected_topic,
        "CLAIMS_DLQ_TOPIC": settings.dlq_topic,
        "CLAIMS_APP_ID": settings.app_id,
        "CLAIMS_WEB_PORT": str(port),
        "CLAIMS_LOG_LEVEL": "WARNING",
    }


def start_workers(
    settings: Settings, count: int, log_dir: Path, transport: str | None = None
) -> list[subprocess.Popen[bytes]]:
    workers = []
    for n in range(count):
        with (log_dir / f"{settings.app_id}-{n}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "stream", "worker"],
                    env=worker_env(settings, free_port(), transport, n),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> list[float]:
    peaks = [peak_rss_mib(w.pid) for w in workers]
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(timeout=60)
    return peaks


def collect_outputs(
    settings: Settings, count: int, timeout: float
) -> list[tuple[float, dict[str, Any]]]:
    """Read the three output topics until `count` records: (output timestamp s, source)."""
    consumer = clients.consumer(
        settings, f"collect-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.validated_topic, settings.rejected_topic, settings.dlq_topic])
    outputs: list[tuple[float, dict[str, Any]]] = []
    seen: set[tuple[int, int]] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(seen) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=2000, timeout=1.0):
                if message.error():
                    continue
                value = message.value() or b"{}"
                # The source sits at the end of a decision and inside a dead letter; a
                # full parse is fine here: this is the measuring side, not the stage.
                source = orjson.loads(value)["source"]
                seen.add((source["partition"], source["offset"]))
                outputs.append((message.timestamp()[1] / 1000, source))
    finally:
        consumer.close()
    if len(seen) < count:
        raise RuntimeError(f"only {len(seen)} of {count} records came out in {timeout:.0f} s")
    return outputs


def stage_rate(
    bootstrap: str, topics: Topics, count: int, workers: int, log_dir: Path
) -> tuple[float, list[float]]:
    """(c) workers drain the preloaded topic: records/s from first to last output, peak RSS."""
    settings = topics.settings(bootstrap, f"stage{workers}-{uuid.uuid4().hex[:4]}")
    create_bench_topics(settings)
    processes = start_workers(settings, workers, log_dir)
    try:
        outputs = collect_outputs(settings, count, timeout=1800)
    finally:
        peaks = stop_workers(processes)
    stamps = sorted(t for t, _ in outputs)
    return count / (stamps[-1] - stamps[0]), peaks


def latency(
    bootstrap: str,
    topics: Topics,
    records: list[bytes],
    rate: float,
    log_dir: Path,
    transport: str | None = None,
) -> dict[str, float]:
    """(d) one caught-up worker fed at `rate` records/s: end-to-end quantiles in ms."""
    settings = topics.settings(bootstrap, f"latency-{uuid.uuid4().hex[:4]}")
    settings = settings.model_copy(update={"input_topic": f"{settings.app_id}-in"})
    create_bench_topics(settings)
    processes = start_workers(settings, 1, log_dir, transport)
    reader = VisibleOutputs(settings)
    try:
        # Wait until the worker holds its partitions: one record through and out.
        preload(settings, records[:1])
        collect_outputs(settings, 1, timeout=120)
        reader.start()
        stamps = preload(settings, records, rate=rate)
        outputs = collect_outputs(settings, len(records) + 1, timeout=600)
        peaks = stop_workers(processes)
    except BaseException:
        stop_workers(processes)
        raise
    finally:
        reader.stop()
    first = min(stamps.values())
    timed = [
        (sent - first, (stamp - sent) * 1000)
        for stamp, s in outputs
        if (sent := stamps.get((s["partition"], s["offset"]))) is not None
    ]
    # The first seconds after a worker joins are slower (output topics' metadata and
    # connections, cold caches): quoted apart from the steady state that follows.
    steady = [delay for sent, delay in timed if sent >= WARM_UP_SECONDS]
    visible = [
        (seen - stamps[where]) * 1000
        for where, seen in reader.seen.items()
        if where in stamps and stamps[where] - first >= WARM_UP_SECONDS
    ]
    return {
        "input_rate_per_s": round(rate),
        "records": len(timed),
        **_quantiles("", [delay for _, delay in timed]),
        **_quantiles(STEADY, steady),
        **(_quantiles(VISIBLE, visible) if len(visible) > 1 else {}),
        "worker_peak_rss_mib": round(peaks[0], 1),
    }


WARM_UP_SECONDS = 3.0
STEADY = f"after_{WARM_UP_SECONDS:.0f}s_"
VISIBLE = f"visible_{STEADY}"
"""From an input's Kafka timestamp to the moment a read_committed reader, reading all along,
has its output: with exactly_once the output is visible when its transaction commits, later
than its own timestamp (taken when it was produced into the transaction)."""


class VisibleOutputs:
    """Reads the output topics (read_committed) on a thread while records are fed: when each
    input's output (by its source partition and offset) became visible."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _read(self) -> None:
        settings = self.settings
        consumer = clients.consumer(
            settings, f"visible-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"}
        )
        consumer.subscribe([settings.validated_topic, settings.rejected_topic, settings.dlq_topic])
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.1)
                if message is None or message.error():
                    continue
                now = time.time()
                source = orjson.loads(message.value() or b"{}")["source"]
                self.seen.setdefault((source["partition"], source["offset"]), now)
        finally:
            consumer.close()


def _quantiles(prefix: str, delays: list[float]) -> dict[str, float]:
    delays = sorted(delays)
    quantile = statistics.quantiles(delays, n=100)
    return {
        f"{prefix}p50_ms": round(quantile[49], 1),
        f"{prefix}p95_ms": round(quantile[94], 1),
        f"{prefix}p99_ms": round(quantile[98], 1),
        f"{prefix}max_ms": round(delays[-1], 1),
    }


TRANSPORTS = ("librdkafka", "aiokafka")


def faust_ceiling(bootstrap: str, topic: str, count: int, kind: str, transport: str) -> float:
    """(e) a bare Faust agent draining the topic: `ack`, `sensor` or `decide` (no output)."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.faust_ceiling", topic, str(count), kind],
        env={**os.environ, "CLAIMS_KAFKA_BOOTSTRAP": bootstrap, "CLAIMS_TRANSPORT": transport},
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    # Faust's terminal spinner may share the line: read from the JSON object's start.
    line = next(row for row in result.stdout.splitlines() if '{"mode"' in row)
    return float(orjson.loads(line[line.index("{") :])["records_per_s"])


@dataclass
class StageRun:
    """One run of the stage benchmark: its records, topics, and the figures so far."""

    bootstrap: str
    topics: Topics
    records: list[bytes]
    repeats: int
    log_dir: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def input(self) -> Settings:
        return self.topics.settings(self.bootstrap, "input")

    def median_of(self, name: str, runs: list[float]) -> float:
        median = statistics.median(runs)
        self.results[name] = {"median_per_s": round(median), "runs": [round(r) for r in runs]}
        print(f"  {name}: median {median:,.0f}/s  runs {', '.join(f'{r:,.0f}' for r in runs)}")
        return median

    def passthrough(self) -> float:
        count = len(self.records)
        topic = self.input.input_topic
        runs = [passthrough(self.input, topic, count) for _ in range(self.repeats)]
        return self.median_of("a_passthrough", runs)

    def decide_only(self) -> float:
        return self.median_of(
            "b_decide_only", [decide_only(self.records) for _ in range(self.repeats)]
        )

    def stage(self, workers: int) -> float:
        runs, peaks = [], []
        for _ in range(self.repeats):
            rate, peak = stage_rate(
                self.bootstrap, self.topics, len(self.records), workers, self.log_dir
            )
            runs.append(rate)
            peaks.extend(peak)
        name = f"c_stage_{workers}_worker"
        median = self.median_of(name, runs)
        self.results[name]["peak_rss_mib"] = round(max(peaks), 1)
        return median

    def faust_ceilings(self) -> None:
        topic, count = self.input.input_topic, len(self.records)
        for transport in TRANSPORTS:
            for kind in ("ack", "sensor", "decide"):
                runs = [
                    faust_ceiling(self.bootstrap, topic, count, kind, transport)
                    for _ in range(self.repeats)
                ]
                self.median_of(f"e_faust_{kind}_{transport}", runs)

    def latency(self, rate: float, seconds: float) -> None:
        records = self.records[: int(rate * seconds)]
        self.results["d_latency"] = latency(
            self.bootstrap, self.topics, records, rate, self.log_dir
        )
        print(f"  d_latency: {self.results['d_latency']}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--latency-rate", type=float, help="Records/s for (d); default half of (c)'s rate."
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c", "d", "e"])
    parser.add_argument("--json", type=Path, default=Path("out/bench-stage.json"))
    args = parser.parse_args(argv)

    bootstrap = bench_bootstrap()
    log_dir = Path("out/bench-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    run = StageRun(bootstrap, Topics(), realistic_records(args.records), args.repeats, log_dir)
    run.results.update(records=len(run.records), repeats=args.repeats)
    create_topics(run.input)
    started = time.perf_counter()
    preload(run.input, run.records)
    print(
        f"preloaded {len(run.records):,} records into {run.input.input_topic} "
        f"({PARTITIONS} partitions) in {time.perf_counter() - started:.1f} s"
    )
    a = run.passthrough() if "a" not in args.skip else 0.0
    b = run.decide_only() if "b" not in args.skip else 0.0
    stage = {w: run.stage(w) for w in args.workers} if "c" not in args.skip else {}
    if "e" not in args.skip:
        run.faust_ceilings()
    if "d" not in args.skip:
        run.latency(args.latency_rate or (stage.get(1) or 2000.0) / 2, args.latency_seconds)
    print_stage_table(run.results, stage, a, b)
    write_figures(args.json, run.results)
    return run.results


def print_stage_table(results: dict[str, Any], stage: dict[int, float], a: float, b: float) -> None:
    print("\n| measure | median records/s |")
    print("|---|---|")
    measures = (
        "a_passthrough",
        "b_decide_only",
        *[f"c_stage_{w}_worker" for w in stage],
        *(
            f"e_faust_{kind}_{transport}"
            for transport in TRANSPORTS
            for kind in ("ack", "sensor", "decide")
        ),
    )
    for name in measures:
        if name in results:
            print(f"| {name} | {results[name]['median_per_s']:,} |")
    if 1 in stage and a and b:
        results["ratio_stage_to_passthrough"] = round(stage[1] / a, 3)
        results["ratio_stage_to_decide_only"] = round(stage[1] / b, 3)
        print(
            f"\nstage/passthrough {stage[1] / a:.2f}   stage/decide-only {stage[1] / b:.2f}   "
            f"worker peak RSS {results['c_stage_1_worker']['peak_rss_mib']} MiB"
        )
    if "d_latency" in results:
        d = results["d_latency"]
        print(
            f"latency at {d['input_rate_per_s']:,}/s: p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms, "
            f"p99 {d['p99_ms']} ms (max {d['max_ms']} ms); after the first "
            f"{WARM_UP_SECONDS:.0f} s: p50 {d[STEADY + 'p50_ms']} ms, p95 {d[STEADY + 'p95_ms']} "
            f"ms, p99 {d[STEADY + 'p99_ms']} ms (max {d[STEADY + 'max_ms']} ms)"
        )


if __name__ == "__main__":
    main()
