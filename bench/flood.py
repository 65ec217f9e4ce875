"""A flood of hostile records through one worker: `make bench-hostile`.

    python -m bench.flood [--ordinary 2200] [--hostile 200] [--size 880000]
                                 [--timeout 240] [--checkout DIR]

Preloads ordinary claims mixed with hostile records (`hostile.hostile_events`: valid
events of about 880 KB whose diagnosis codes are long garbage) into a fresh input topic on
the local broker (or CLAIMS_KAFKA_BOOTSTRAP), starts one worker, and reads the output
topics until every input record has an output or the time is up. It prints the outputs per
route, inputs without an output and with more than one, the time from the worker's start to
the last input's output, whether the worker is still alive, and its peak RSS (VmHWM).

`--checkout DIR` runs the worker of another checkout (its own `.venv`), for a before/after
comparison on the same records. Nothing here asserts: it measures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message

from bench.claims import claims
from bench.decide import write_figures
from bench.hostile import hostile_events
from bench.stage import PARTITIONS, bench_bootstrap, free_port, preload, worker_env
from stream.kafka import clients
from stream.kafka.topics import create_topics
from stream.settings import Settings

RSS_SAMPLE_SECONDS = 0.25


def flood_records(ordinary: int, hostile: int, size_bytes: int) -> list[bytes]:
    """Ordinary claims with the hostile records spread evenly among them."""
    plain = list(claims(ordinary))
    bad = list(hostile_events(hostile, size_bytes))
    records: list[bytes] = []
    every = max(len(plain) // max(len(bad), 1), 1)
    for n, record in enumerate(plain):
        records.append(record)
        if n % every == every - 1 and bad:
            records.append(bad.pop())
    return records + bad


@dataclass
class Ledger:
    """Outputs counted by the input record they answer (its partition and offset)."""

    expected: set[tuple[int, int]]
    answers: Counter[tuple[int, int]] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    last_answer: float = 0.0
    strangers: int = 0

    def take(self, message: Message, route: str) -> None:
        document = orjson.loads(message.value() or b"{}")
        source = document.get("source") or {}
        where = (int(source.get("partition", -1)), int(source.get("offset", -1)))
        if where not in self.expected:
            self.strangers += 1
            return
        if route == "dead_letter":
            route = f"dead_letter:{document.get('error', {}).get('kind')}"
        self.routes[route] += 1
        if where not in self.answers:
            self.last_answer = time.monotonic()
        self.answers[where] += 1

    @property
    def complete(self) -> bool:
        return len(self.answers) == len(self.expected)

    @property
    def duplicates(self) -> int:
        return sum(self.answers.values()) - len(self.answers)


def _vm(pid: int, name: str) -> float:
    """A process's `VmRSS` or `VmHWM` in MiB; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _start_worker(settings: Settings, checkout: Path | None, log: Path) -> subprocess.Popen[bytes]:
    python = str(checkout / ".venv" / "bin" / "python") if checkout else sys.executable
    env = {**worker_env(settings, free_port()), "CLAIMS_REVIEW_TOPIC": settings.review_topic}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [python, "-m", "stream", "worker"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=checkout or None,
        )


def _read_until(
    settings: Settings, ledger: Ledger, worker: subprocess.Popen[bytes], timeout: float
) -> float:
    """Read outputs until every input is answered or `timeout`; returns the worker's peak RSS
    seen while it ran (VmHWM, sampled)."""
    routes = {
        settings.validated_topic: "validated",
        settings.review_topic: "review",
        settings.rejected_topic: "rejected",
        settings.dlq_topic: "dead_letter",
    }
    consumer = clients.consumer(
        settings, f"flood-read-{uuid.uuid4().hex[:6]}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe(list(routes))
    deadline = time.monotonic() + timeout
    peak, sampled = 0.0, 0.0
    try:
        while time.monotonic() < deadline and not ledger.complete:
            for message in consumer.consume(num_messages=500, timeout=0.2):
                error = message.error()
                if error is None:
                    ledger.take(message, routes[message.topic() or ""])
                elif error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(error))
            if time.monotonic() - sampled > RSS_SAMPLE_SECONDS:
                peak, sampled = max(peak, _vm(worker.pid, "VmHWM")), time.monotonic()
        settle = time.monotonic() + 3.0  # late duplicates would show up now
        while time.monotonic() < settle:
            for message in consumer.consume(num_messages=500, timeout=0.2):
                if message.error() is None:
                    ledger.take(message, routes[message.topic() or ""])
    finally:
        consumer.close()
    return max(peak, _vm(worker.pid, "VmHWM"))


def run_flood(
    settings: Settings,
    records: list[bytes],
    timeout: float,
    checkout: Path | None,
    log_dir: Path,
) -> dict[str, Any]:
    create_topics(settings)
    started = time.perf_counter()
    stamps = preload(settings, records)
    print(f"preloaded {len(records):,} records in {time.perf_counter() - started:.1f} s")
    ledger = Ledger(set(stamps))
    worker = _start_worker(settings, checkout, log_dir / f"{settings.app_id}.log")
    begun = time.monotonic()
    try:
        peak = _read_until(settings, ledger, worker, timeout)
        alive = worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return {
        "records": len(stamps),
        "answered": len(ledger.answers),
        "unanswered": len(stamps) - len(ledger.answers),
        "duplicates": ledger.duplicates,
        "outputs_by_route": dict(sorted(ledger.routes.items())),
        "seconds_to_last_first_output": round(ledger.last_answer - begun, 1)
        if ledger.complete
        else None,
        "worker_alive_at_end": alive,
        "worker_exit_status": None if alive else worker.returncode,
        "worker_peak_rss_mib": round(peak, 1),
        "worker_log": str(log_dir / f"{settings.app_id}.log"),
    }


def flood_settings(bootstrap: str) -> Settings:
    name = f"flood-{uuid.uuid4().hex[:6]}"
    return Settings(
        kafka_bootstrap=bootstrap,
        input_topic=f"{name}-in",
        validated_topic=f"{name}-validated",
        review_topic=f"{name}-review",
        rejected_topic=f"{name}-rejected",
        dlq_topic=f"{name}-dlq",
        app_id=name,
        partitions=PARTITIONS,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ordinary", type=int, default=2200)
    parser.add_argument("--hostile", type=int, default=200)
    parser.add_argument("--size", type=int, default=880_000, help="Bytes of a hostile record.")
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--checkout", type=Path, help="Run the worker of this checkout.")
    parser.add_argument("--json", type=Path, default=Path("out/bench-hostile.json"))
    args = parser.parse_args(argv)

    bootstrap = bench_bootstrap()
    log_dir = Path("out/bench-logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    records = flood_records(args.ordinary, args.hostile, args.size)
    result = run_flood(
        flood_settings(bootstrap),
        records,
        args.timeout,
        args.checkout.resolve() if args.checkout else None,
        log_dir.resolve(),
    )
    print(
        f"\n{result['answered']:,} of {result['records']:,} input records answered "
        f"({result['unanswered']:,} without an output, {result['duplicates']:,} duplicates)"
    )
    for route, count in result["outputs_by_route"].items():
        print(f"  {route:34} {count:6,}")
    drain = result["seconds_to_last_first_output"]
    reached = f"not reached in {args.timeout:.0f} s" if drain is None else f"{drain} s"
    print(
        f"worker start to the last record's output: {reached}; "
        f"worker {'alive' if result['worker_alive_at_end'] else 'exited'} at the end; "
        f"peak RSS {result['worker_peak_rss_mib']:,.0f} MiB"
    )
    write_figures(args.json, result)
    return result


if __name__ == "__main__":
    main()
