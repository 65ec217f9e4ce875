"""What loaded ICD-10-CM releases cost: decide() and start-up, built in and loaded, side by side.

    python -m bench.codesets [--claims 20000] [--rounds 7]
    python -m bench.codesets --worker --port 19092 --controller-port 19193

Builds releases with the contents of the built-in code sets (one per built-in period, so
that every claim of the benchmark is judged by a loaded release: the worst case for the hot
path), stores them in a temporary code-set store and reads them back as the stage does at
start. Then decides the same claims (`bench.claims`, spread over FY2023 to FY2027)
with the built-in stage and with the loaded one, alternating rounds in one process pinned
to one core, and prints the process CPU time per claim of each and their ratio, the
start-up cost and the resident memory. It also checks that both give the same findings.

With `--worker`: starts a local broker on the given ports (home under var/), creates the
topics, and times a worker from its start to a healthy /healthz, with the built-in code
sets and with two loaded releases (FY2026's April update and FY2027), one after the other.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench.claims import claims
from stream.cli.common import freeze_long_lived_objects
from stream.core.codes.calendar import CodeCalendar, CodeSetPeriod, load_calendar
from stream.core.codes.icd10cm import CODE_FORMAT, Icd10cmCatalog, bundled_text
from stream.core.codes.releases import LoadedRelease, ReleaseCodes
from stream.core.codes.store import CodeSetStore
from stream.core.contracts import KafkaSource
from stream.core.decision import Decider, Output

ROOT = Path(__file__).resolve().parents[2]
SOURCE = KafkaSource(topic="encounters", partition=0, offset=0)


def release_like(catalog: Icd10cmCatalog, period: CodeSetPeriod) -> LoadedRelease:
    """A loaded release with the codes of a built-in period and the bundled descriptions."""
    calendar: CodeCalendar = catalog.calendar
    billable = [c for c in calendar.billable_codes(period) if CODE_FORMAT.match(c)]
    headers = [c for c in calendar.header_codes() if calendar.header_mask(c) & period.bit]
    descriptions = {
        code: catalog.own_text(code, period) or f"{code} (no bundled description)"
        for code in (*billable, *headers)
    }
    codes = ReleaseCodes(frozenset(billable), frozenset(headers), descriptions, 0, "")
    digest = f"{period.index:02d}" * 32
    return LoadedRelease(period.start, f"built-in {period.name}", digest, "bench", codes)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_per_claim(decider: Decider, lines: Sequence[bytes]) -> float:
    started = time.process_time()
    for line in lines:
        decider.decide(line, SOURCE)
    return (time.process_time() - started) / len(lines) * 1e6


def _findings(output: Output) -> list[tuple[str, str]]:
    return [(f.rule_id, f.severity) for f in output.findings]


def bench_decide(count: int, rounds: int) -> None:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    lines = list(claims(count))
    built_in = Decider()
    releases = [release_like(built_in.icd10cm, p) for p in built_in.icd10cm.calendar.periods]
    rss = _rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        store = CodeSetStore(Path(folder))
        for release in releases:
            store.add(release)
        started = time.perf_counter()
        stored = store.releases(known=bundled_text)  # as the commands and the worker read it
        read = time.perf_counter() - started
        started = time.perf_counter()
        calendar = load_calendar(releases=stored)
        built = time.perf_counter() - started
    loaded = Decider(icd10cm=Icd10cmCatalog(calendar, built_in.icd10cm.index))
    freeze_long_lived_objects()
    differing = sum(
        _findings(built_in.decide(line, SOURCE)) != _findings(loaded.decide(line, SOURCE))
        for line in lines  # also the warm-up: every code described once by both
    )
    by_source = {p.source for p in loaded.icd10cm.calendar.periods}
    figures: dict[str, list[float]] = {"built-in": [], "loaded": []}
    for _ in range(rounds):  # alternating: both see the same machine load
        figures["built-in"].append(_cpu_per_claim(built_in, lines))
        figures["loaded"].append(_cpu_per_claim(loaded, lines))
    built_cpu = statistics.median(figures["built-in"])
    loaded_cpu = statistics.median(figures["loaded"])
    print(f"decide() on CPU {cpu}, {len(lines):,} claims, {rounds} alternating rounds")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"loaded releases: {len(stored)} ({len(by_source)} sources judge the claims' dates)")
    print(f"store read {read:.2f} s, calendar with the releases {built:.2f} s")
    print(f"resident memory: {rss:.0f} MiB with the built-in stage, {_rss_mib():.0f} MiB with both")
    for name, rows in figures.items():
        spread = ", ".join(f"{value:.1f}" for value in rows)
        print(f"{name:9} CPU {statistics.median(rows):6.1f} us/claim (rounds: {spread})")
    print(f"loaded / built-in: {loaded_cpu / built_cpu:.3f}")
    print(f"claims whose findings differ: {differing} (expected 0)")


# --- worker start to healthy -------------------------------------------------------------------


def _healthy_after(env: dict[str, str], port: int, timeout: float = 120.0) -> tuple[float, float]:
    """Seconds from spawning a worker to a healthy /healthz, and the CPU seconds it used
    (up to its stop, which follows at once)."""
    started = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "stream", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    healthy = None
    try:
        while healthy is None and time.perf_counter() - started < timeout:
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as page:
                    if page.status == 200:
                        healthy = time.perf_counter() - started
            except OSError:
                time.sleep(0.1)
    finally:
        worker.terminate()
        _, _, usage = os.wait4(worker.pid, 0)
    if healthy is None:
        raise RuntimeError("the worker did not become healthy")
    return healthy, usage.ru_utime + usage.ru_stime


def bench_worker(port: int, controller_port: int, runs: int) -> None:
    from stream.kafka.local.cluster import LocalBroker
    from stream.kafka.topics import create_topics
    from stream.settings import Settings

    home = ROOT / "var" / "bench-codesets-kafka"
    broker = LocalBroker(home, port=port, controller_port=controller_port)
    bootstrap = broker.start()
    try:
        settings = Settings(kafka_bootstrap=bootstrap, partitions=2)
        create_topics(settings)
        stage = Decider()
        wanted = (dt.date(2026, 4, 1), dt.date(2026, 10, 1))
        calendar = stage.icd10cm.calendar
        two = [release_like(stage.icd10cm, p) for p in calendar.periods if p.start in wanted]
        with tempfile.TemporaryDirectory() as folder:
            store = CodeSetStore(Path(folder) / "store")
            for release in two:
                store.add(release)
            web_port = port + 7
            env = {
                **os.environ,
                "CLAIMS_KAFKA_BOOTSTRAP": bootstrap,
                "CLAIMS_PARTITIONS": "2",
                "CLAIMS_WEB_PORT": str(web_port),
                "CLAIMS_APP_ID": "bench-codesets",
            }
            figures: dict[str, list[tuple[float, float]]] = {"built-in": [], "two loaded": []}
            for _ in range(runs):  # alternating: both see the same machine load
                figures["built-in"].append(_healthy_after(env, web_port))
                loaded_env = {**env, "CLAIMS_CODE_SETS_DIR": str(store.directory)}
                figures["two loaded"].append(_healthy_after(loaded_env, web_port))
        print(
            f"worker start to healthy /healthz, {runs} alternating runs, load average "
            f"{os.getloadavg()[0]:.1f}:"
        )
        for name, rows in figures.items():
            wall = statistics.median(w for w, _ in rows)
            cpu = statistics.median(c for _, c in rows)
            each = ", ".join(f"{w:.1f}" for w, _ in rows)
            print(f"  {name:11} median {wall:5.1f} s wall ({each}), {cpu:4.1f} s CPU")
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--worker", action="store_true", help="time the worker's start instead")
    parser.add_argument("--port", type=int, default=19092)
    parser.add_argument("--controller-port", type=int, default=19193)
    parser.add_argument("--runs", type=int, default=3, help="worker starts of each kind")
    args = parser.parse_args(argv)
    if args.worker:
        bench_worker(args.port, args.controller_port, args.runs)
    else:
        bench_decide(args.claims, args.rounds)
    print(
        f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
