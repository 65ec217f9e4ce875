"""What-if against check: the time to replay a policy change next to one batch run.

    python -m bench.whatif [--records 100000] [--jobs 0] [--repeats 3]
                                  [--policy docs/policy.toml] [--json out/bench-whatif.json]

Writes a file of realistic records (the example stream cycled with unique IDs, malformed
lines included), then times, as a user runs them (a fresh process each, wall clock, start-up
and reference data included), the median of `--repeats` runs of:

(a) `claims-stage check FILE --jobs 1`,
(b) `claims-stage check FILE --jobs N`,
(c) `claims-stage whatif FILE --rules-config POLICY --jobs N` (baseline: the catalogue).

It prints the figures, whatif/check at the same jobs (the target: at most 2) and the
speed-up of check from 1 to N jobs, and writes them to a JSON file. Nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.decide import write_figures
from bench.stage import realistic_records
from stream.cli.batch import resolve_jobs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "docs" / "policy.toml"


def timed(command: list[str], repeats: int) -> float:
    """Median wall-clock seconds of `command`, run `repeats` times; fails if it does."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return statistics.median(seconds)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=0, help="0: every core")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--json", type=Path, default=Path("out/bench-whatif.json"))
    args = parser.parse_args(argv)

    stage = [sys.executable, "-m", "stream"]
    jobs = str(args.jobs)
    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as folder:
        work = Path(folder)
        source = work / "claims.jsonl"
        source.write_bytes(b"\n".join(realistic_records(args.records)) + b"\n")
        check_one = timed(
            [*stage, "check", str(source), "--out", str(work / "c1"), "--jobs", "1"], args.repeats
        )
        check_n = timed(
            [*stage, "check", str(source), "--out", str(work / "cn"), "--jobs", jobs], args.repeats
        )
        whatif_n = timed(
            [
                *stage,
                "whatif",
                str(source),
                "--rules-config",
                str(args.policy),
                "--out",
                str(work / "w"),
                "--jobs",
                jobs,
            ],
            args.repeats,
        )
        changed = len((work / "w" / "changes.jsonl").read_bytes().splitlines())

    workers = resolve_jobs(args.jobs)
    results: dict[str, object] = {
        "records": args.records,
        "jobs": workers,
        "policy": str(args.policy),
        "claims_changed": changed,
        "check_jobs_1_seconds": round(check_one, 2),
        "check_jobs_n_seconds": round(check_n, 2),
        "whatif_jobs_n_seconds": round(whatif_n, 2),
        "whatif_over_check": round(whatif_n / check_n, 2),
        "check_speedup_1_to_n": round(check_one / check_n, 2),
    }
    print(f"{args.records:,} records, {workers} jobs, median of {args.repeats} (wall clock)")
    print(f"{'run':34} {'seconds':>8} {'records/s':>10}")
    for name, seconds in (
        ("check --jobs 1", check_one),
        (f"check --jobs {args.jobs}", check_n),
        (f"whatif --jobs {args.jobs}", whatif_n),
    ):
        print(f"{name:34} {seconds:>8.2f} {args.records / seconds:>10,.0f}")
    print(
        f"whatif / check at {workers} jobs: {whatif_n / check_n:.2f} (target <= 2); "
        f"check speed-up 1 -> {workers} jobs: {check_one / check_n:.2f}x; "
        f"{changed:,} claims changed"
    )
    write_figures(args.json, results)
    return results


if __name__ == "__main__":
    main()
