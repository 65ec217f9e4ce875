"""The stage's paths on the same claims, in one run: `make bench`.

    python -m bench.paths [--claims 100000] [--rounds 3] [--workers 1 2]
                          [--transports librdkafka exactly_once aiokafka]
                          [--latency-rate 1000]

1. `decide()` alone, in this process pinned to one core: claims/s and CPU per claim.
2. `claims-stage check` on the claims file, one job and all cores (`--jobs`): claims/s and
   CPU per claim of the whole command tree, the start-up (a one-claim file) subtracted.
3. The stream worker on the local broker (started when no broker is configured), in each
   mode: at-least-once on librdkafka (`librdkafka`, the default), exactly-once on
   librdkafka (`exactly_once`: CLAIMS_PROCESSING_GUARANTEE=exactly_once, one transaction a
   fetched batch) and at-least-once on Faust's aiokafka (`aiokafka`): the claims
   preloaded into a fresh topic of 6 partitions, then one worker (and two, for the
   scale-out figure, on the first transport) drains it; claims/s from its first output to
   its last (the broker's append times), the worker's own CPU (from /proc) over the same
   span divided by the claims, and its peak RSS. The modes take turns within each round,
   so a busy machine weighs on all alike.
4. Latency in each mode: one caught-up worker fed at `--latency-rate` claims/s for
   `--latency-seconds`; p50 and p99 from each input's Kafka timestamp to its output's,
   after the first 3 s, and to the moment a read_committed reader had the output (with
   exactly_once, when its transaction committed).

It prints the table with the ratios stream/batch and batch/decide, and the load average,
and writes the figures to a JSON file. Medians of `--rounds` runs; CPU time is the steadier
figure on a shared machine. Nothing here asserts a speed: it measures.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from bench.claims import write_claims
from bench.decide import write_figures
from bench.stage import (
    PARTITIONS,
    STEADY,
    VISIBLE,
    Topics,
    bench_bootstrap,
    create_bench_topics,
    free_port,
    latency,
    peak_rss_mib,
    preload,
    start_workers,
    worker_env,
)
from stream.cli.common import freeze_long_lived_objects
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.kafka import clients
from stream.settings import Settings

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class PathFigure:
    """One path's speed: claims per second (wall) and microseconds of CPU per claim."""

    claims_per_s: float
    cpu_us_per_claim: float
    peak_rss_mib: float = 0.0
    """The largest worker's peak resident memory (stream paths only)."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    """End-to-end latency at the latency rate, after the first seconds (stream paths)."""
    visible_p50_ms: float | None = None
    visible_p99_ms: float | None = None
    """The same, to the moment a read_committed reader had the output."""

    def row(self, name: str) -> str:
        rss = f"{self.peak_rss_mib:,.0f}" if self.peak_rss_mib else ""
        latencies = " | ".join(
            f"{ms:,.1f}" if ms is not None else ""
            for ms in (self.p50_ms, self.p99_ms, self.visible_p50_ms, self.visible_p99_ms)
        )
        return (
            f"| {name} | {self.claims_per_s:,.0f} | {self.cpu_us_per_claim:,.1f} | "
            f"{latencies} | {rss} |"
        )


def median_figure(runs: Sequence[PathFigure]) -> PathFigure:
    return PathFigure(
        statistics.median(r.claims_per_s for r in runs),
        statistics.median(r.cpu_us_per_claim for r in runs),
        max(r.peak_rss_mib for r in runs),
    )


# --- 1. decide() -------------------------------------------------------------------------


def decide_alone(claims: list[bytes], rounds: int) -> PathFigure:
    """decide() over every claim, pinned to one core, after a warm-up pass."""
    cpu = min(os.sched_getaffinity(0))
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        decider = Decider()
        freeze_long_lived_objects()
        source = FileSource(file="bench", line=1)
        for claim in claims[:5000]:
            decider.decide(claim, source)
        runs = []
        for _ in range(rounds):
            wall, work = time.perf_counter(), time.process_time()
            for claim in claims:
                decider.decide(claim, source)
            wall, work = time.perf_counter() - wall, time.process_time() - work
            runs.append(PathFigure(len(claims) / wall, work / len(claims) * 1e6))
        return median_figure(runs)
    finally:
        os.sched_setaffinity(0, previous)


# --- 2. check ------------------------------------------------------------------------------


def _run_check(path: Path, jobs: int, out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it started)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stream",
            "check",
            str(path),
            "--out",
            str(out),
            "--jobs",
            str(jobs),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def check_command(path: Path, count: int, jobs: int, rounds: int, scratch: Path) -> PathFigure:
    """`claims-stage check --jobs N` with its start-up (a one-claim file) subtracted."""
    one = scratch / "one-claim.jsonl"
    one.write_bytes(path.read_bytes().split(b"\n", 1)[0] + b"\n")
    runs = []
    for _ in range(rounds):
        start_wall, start_cpu = _run_check(one, jobs, scratch / "one")
        wall, cpu = _run_check(path, jobs, scratch / "all")
        runs.append(
            PathFigure(count / max(wall - start_wall, 1e-9), (cpu - start_cpu) / count * 1e6)
        )
    return median_figure(runs)


# --- 3. the stream worker -----------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _committed(settings: Settings) -> int:
    consumer = clients.consumer(settings, settings.app_id)
    try:
        wanted = [TopicPartition(settings.input_topic, p) for p in range(PARTITIONS)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()


def _output_span(settings: Settings, count: int) -> tuple[float, float, int]:
    """(first, last) broker append time of the outputs in seconds, and how many there are."""
    consumer = clients.consumer(
        settings, f"bench-read-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.validated_topic, settings.rejected_topic, settings.dlq_topic])
    first, last, seen, idle = float("inf"), 0.0, 0, 0
    try:
        while seen < count and idle < 10:
            messages = consumer.consume(num_messages=5000, timeout=1.0)
            idle = 0 if messages else idle + 1
            for message in messages:
                if message.error() is None:
                    stamp = message.timestamp()[1] / 1000
                    first, last, seen = min(first, stamp), max(last, stamp), seen + 1
    finally:
        consumer.close()
    return first, last, seen


def _cpu_at(samples: list[tuple[float, float]], moment: float) -> float:
    """CPU seconds at a moment, interpolated between the samples around it."""
    before = [s for s in samples if s[0] <= moment] or samples[:1]
    after = [s for s in samples if s[0] >= moment] or samples[-1:]
    (t0, c0), (t1, c1) = before[-1], after[0]
    return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)


def stream_worker(
    topics: Topics, bootstrap: str, count: int, workers: int, log_dir: Path, transport: str
) -> PathFigure:
    """Workers drain the preloaded input topic: claims/s and CPU per claim over the drain."""
    settings = topics.settings(bootstrap, f"w{workers}-{transport[:3]}-{uuid.uuid4().hex[:4]}")
    create_bench_topics(settings)
    processes = start_workers(settings, workers, log_dir, transport)
    samples: list[tuple[float, float]] = []
    peak = 0.0
    try:
        deadline = time.time() + 60 + count / 200
        while time.time() < deadline:
            samples.append((time.time(), sum(_cpu_seconds(p.pid) for p in processes)))
            if _committed(settings) >= count:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"the workers did not drain {count:,} claims in time")
        peak = max(peak_rss_mib(p.pid) for p in processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
    first, last, seen = _output_span(settings, count)
    if seen < count:
        raise RuntimeError(f"only {seen:,} of {count:,} outputs arrived")
    cpu = _cpu_at(samples, last) - _cpu_at(samples, first)
    return PathFigure((count - 1) / (last - first), cpu / count * 1e6, peak)


def start_to_healthy(topics: Topics, bootstrap: str) -> float:
    """Seconds from launching a worker to its first 200 on /healthz (partitions held)."""
    settings = topics.settings(bootstrap, f"start-{uuid.uuid4().hex[:4]}")
    create_bench_topics(settings)
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "worker"],
        env=worker_env(settings, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return time.perf_counter() - started
            except OSError:  # not listening yet, or 503 until partitions are assigned
                time.sleep(0.1)
        raise RuntimeError("the worker did not become healthy within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- the run --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--transports", nargs="+", default=list(TRANSPORTS), choices=TRANSPORTS)
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--no-stream", action="store_true", help="Skip the broker paths.")
    parser.add_argument("--json", type=Path, default=Path("out/bench-paths.json"))
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="claims-bench-"))
    path = write_claims(scratch / "claims.jsonl", args.claims)
    claims = path.read_bytes().splitlines()
    cores = len(os.sched_getaffinity(0))
    print(f"{len(claims):,} claims (2-8 diagnoses, context filled, FY2023-FY2027), {cores} cores")
    extra: dict[str, Any] = {"load_average_before": os.getloadavg()}

    figures: dict[str, PathFigure] = {"decide": decide_alone(claims, args.rounds)}
    figures["check_1_job"] = check_command(path, len(claims), 1, args.rounds, scratch)
    figures[f"check_{cores}_jobs"] = check_command(path, len(claims), 0, args.rounds, scratch)
    if not args.no_stream:
        figures.update(stream_paths(args, claims, scratch, extra))
    extra["load_average_after"] = os.getloadavg()
    return report(figures, args.json, len(claims), extra)


TRANSPORTS = ("librdkafka", "exactly_once", "aiokafka")
"""The worker's modes (bench.stage.MODES): at-least-once on librdkafka, exactly-once on
librdkafka, at-least-once on aiokafka."""


def stream_paths(
    args: argparse.Namespace, claims: list[bytes], scratch: Path, extra: dict[str, Any]
) -> dict[str, PathFigure]:
    """The stream worker on each transport: drains of the preloaded claims, taking turns
    within each round, then the latency at a steady rate."""
    bootstrap = bench_bootstrap()
    topics = Topics()
    input_settings = topics.settings(bootstrap, "input")
    create_bench_topics(input_settings)
    preload(input_settings, claims)
    log_dir = scratch / "logs"
    log_dir.mkdir()
    healthy = statistics.median(start_to_healthy(topics, bootstrap) for _ in range(args.rounds))
    print(f"worker start to healthy: {healthy:.1f} s (median of {args.rounds})")
    extra["start_to_healthy_s"] = healthy
    runs: dict[str, list[PathFigure]] = {}
    for _ in range(args.rounds):
        for transport in args.transports:
            counts = args.workers if transport == args.transports[0] else [1]
            for workers in counts:
                figure = stream_worker(topics, bootstrap, len(claims), workers, log_dir, transport)
                runs.setdefault(f"stream_{workers}_worker_{transport}", []).append(figure)
    figures = {name: median_figure(found) for name, found in runs.items()}
    paced = claims[: int(args.latency_rate * args.latency_seconds)]
    for transport in args.transports:
        measured = latency(bootstrap, topics, paced, args.latency_rate, log_dir, transport)
        extra[f"latency_{transport}"] = measured
        name = f"stream_1_worker_{transport}"
        figures[name] = replace(
            figures[name],
            p50_ms=measured[STEADY + "p50_ms"],
            p99_ms=measured[STEADY + "p99_ms"],
            visible_p50_ms=measured.get(VISIBLE + "p50_ms"),
            visible_p99_ms=measured.get(VISIBLE + "p99_ms"),
        )
    return figures


def exactly_once_ratios(figures: dict[str, PathFigure]) -> dict[str, float]:
    """Exactly-once beside at-least-once on librdkafka, same claims, same run."""
    eos, alos = (
        figures.get("stream_1_worker_exactly_once"),
        figures.get("stream_1_worker_librdkafka"),
    )
    if eos is None or alos is None:
        return {}
    return {
        "exactly_once_rate_over_at_least_once": eos.claims_per_s / alos.claims_per_s,
        "exactly_once_cpu_over_at_least_once": eos.cpu_us_per_claim / alos.cpu_us_per_claim,
    }


def report(
    figures: dict[str, PathFigure], path: Path, count: int, extra: dict[str, Any]
) -> dict[str, Any]:
    print(
        "\n| path | claims/s | CPU us/claim | p50 ms | p99 ms | p50 ms visible | "
        "p99 ms visible | peak RSS MiB |\n|---|---|---|---|---|---|---|---|"
    )
    for name, figure in figures.items():
        print(figure.row(name))
    decide, batch = figures["decide"], figures["check_1_job"]
    ratios = {
        "batch_cpu_over_decide_cpu": batch.cpu_us_per_claim / decide.cpu_us_per_claim,
        "check_all_jobs_over_1_job": next(
            (
                f.claims_per_s
                for n, f in figures.items()
                if n.startswith("check_") and n != "check_1_job"
            ),
            0.0,
        )
        / batch.claims_per_s,
    }
    for transport in TRANSPORTS:
        stream = figures.get(f"stream_1_worker_{transport}")
        if stream is None:
            continue
        ratios[f"stream_cpu_over_batch_cpu_{transport}"] = (
            stream.cpu_us_per_claim / batch.cpu_us_per_claim
        )
        ratios[f"stream_rate_over_batch_rate_{transport}"] = (
            stream.claims_per_s / batch.claims_per_s
        )
        two = figures.get(f"stream_2_worker_{transport}")
        if two is not None:
            ratios[f"stream_2_workers_over_1_{transport}"] = two.claims_per_s / stream.claims_per_s
    ratios.update(exactly_once_ratios(figures))
    print(
        "(latency at the latency rate, after the first 3 s: to the output's timestamp, and "
        "to a read_committed reader having it)\n"
    )
    for name, value in ratios.items():
        print(f"{name:44} {value:6.2f}")
    for moment in ("before", "after"):
        loads = extra.get(f"load_average_{moment}")
        if loads:
            print(f"load average {moment}: {', '.join(f'{x:.2f}' for x in loads)}")
    results: dict[str, Any] = {
        "claims": count,
        **extra,
        **{name: vars(figure) for name, figure in figures.items()},
        "ratios": ratios,
    }
    write_figures(path, results)
    return results


if __name__ == "__main__":
    main()
