"""How fast is `decide` on one core, and how much memory does the stage hold?

    python -m bench.decide [--input FILE] [--rounds 7] [--json out/bench-decide.json]

Pins itself to one CPU, loads the stage, warms the code caches with one pass, then runs
rounds of at least half a second each over (a) every line of the example stream (whose
claims are dated in every loaded ICD-10-CM code-set year) and
(b) the claims with 2 to 8 diagnoses, and reports the median decisions per second with
the spread. The decode share (`EncounterEvent.model_validate_json` alone) is measured
side by side, as is the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from stream.cli.common import freeze_long_lived_objects
from stream.core.contracts import EncounterEvent, KafkaSource
from stream.core.decision import Decider

DEFAULT_INPUT = Path(__file__).resolve().parents[1] / "schemas" / "examples" / "encounters.jsonl"
SOURCE = KafkaSource(topic="encounters", partition=0, offset=0)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _diagnosis_count(line: bytes) -> int:
    try:
        document = json.loads(line)
    except ValueError:
        return 0
    diagnoses = document.get("diagnoses") if isinstance(document, dict) else None
    return len(diagnoses) if isinstance(diagnoses, list) else 0


def _is_event(line: bytes) -> bool:
    try:
        EncounterEvent.model_validate_json(line)
    except ValueError:
        return False
    return True


def measure(work: Callable[[bytes], object], lines: Sequence[bytes], rounds: int) -> list[float]:
    """Per-round operations per second; each round repeats the lines for >= 0.5 s."""
    rates = []
    for _ in range(rounds):
        done = 0
        started = time.perf_counter()
        while True:
            for line in lines:
                work(line)
            done += len(lines)
            elapsed = time.perf_counter() - started
            if elapsed >= 0.5:
                break
        rates.append(done / elapsed)
    return rates


def summarise(rates: list[float]) -> dict[str, float]:
    median = statistics.median(rates)
    return {
        "median_per_s": round(median),
        "min_per_s": round(min(rates)),
        "max_per_s": round(max(rates)),
        "us_per_record": round(1e6 / median, 2),
    }


def write_figures(path: Path, results: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {path}")


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("out/bench-decide.json"))
    args = parser.parse_args(argv)

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    lines = [line.rstrip(b"\n") for line in args.input.read_bytes().splitlines()]
    typical = [line for line in lines if 2 <= _diagnosis_count(line) <= 8 and _is_event(line)]

    rss_before = _rss_mib()
    started = time.perf_counter()
    stage = Decider()
    freeze_long_lived_objects()
    load_seconds = time.perf_counter() - started
    rss_loaded = _rss_mib()

    def decide(line: bytes) -> object:
        return stage.decide(line, SOURCE)

    for line in lines:  # warm-up: every code described once
        decide(line)

    results: dict[str, object] = {
        "input": str(args.input),
        "lines": len(lines),
        "claims_2_to_8_diagnoses": len(typical),
        "cpu": cpu,
        "stage_load_seconds": round(load_seconds, 2),
        "decide_all_lines": summarise(measure(decide, lines, args.rounds)),
        "decide_2_to_8_diagnoses": summarise(measure(decide, typical, args.rounds)),
        "decode_only_2_to_8_diagnoses": summarise(
            measure(EncounterEvent.model_validate_json, typical, args.rounds)
        ),
        "rss_mib_before_stage": round(rss_before, 1),
        "rss_mib_after_stage_load": round(rss_loaded, 1),
        "rss_mib_after_runs": round(_rss_mib(), 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }

    print(
        f"decide() on CPU {cpu}: {args.input} ({len(lines)} lines, {len(typical)} claims of 2-8 diagnoses)"
    )
    print(f"{'measure':32} {'median/s':>10} {'min/s':>10} {'max/s':>10} {'us/record':>10}")
    for name in ("decide_all_lines", "decide_2_to_8_diagnoses", "decode_only_2_to_8_diagnoses"):
        row = results[name]
        assert isinstance(row, dict)
        print(
            f"{name:32} {row['median_per_s']:>10,} {row['min_per_s']:>10,} "
            f"{row['max_per_s']:>10,} {row['us_per_record']:>10}"
        )
    print(
        f"stage load {load_seconds:.2f} s; RSS {rss_before:.0f} MiB before the stage, "
        f"{rss_loaded:.0f} MiB loaded, peak {results['peak_rss_mib']} MiB"
    )
    write_figures(args.json, results)
    return results


if __name__ == "__main__":
    main()
