"""Batch throughput by input format: a 10,000-claim 837 next to the same claims as native
JSON Lines and as a FHIR Bundle.

    python -m bench.formats [--claims 10000] [--json out/bench-formats.json]

Builds the claims from the decided events of the example stream (cycled, each with its own
claim ID, patients with one to three claims), writes them as native JSON Lines, as an 837
file (an 837P interchange of the professional claims, an 837I interchange of the
institutional ones, at most 5,000 claims per transaction set as the guides recommend) and as
a FHIR Bundle, then runs batch mode (`read_input` + `run_batch`, as `claims-stage check`)
over each in a fresh process pinned to one CPU. It prints claims per second and the peak
resident memory of each process, beside the memory after the stage's reference data is
loaded (most of it is the ICD-10-CM tables, the same for every format).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import claimfiles
from stream.cli.batch import run_batch
from stream.cli.common import freeze_long_lived_objects
from stream.cli.readers import read_input
from stream.core.contracts import FileSource
from stream.core.decision import Decider

EXAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "examples" / "encounters.jsonl"
CLAIMS_PER_TRANSACTION = 5_000
FORMATS = ("native JSON Lines", "X12 837", "FHIR Bundle")


def source_events(decider: Decider) -> list[dict[str, Any]]:
    """The example stream's events that are decided (not dead letters), without context,
    and (837P billing at least one line) professional ones with procedures."""
    events = []
    for number, line in enumerate(EXAMPLES.read_bytes().splitlines(), start=1):
        if decider.decide(line, FileSource(file="examples", line=number)).route == "dead_letter":
            continue
        event = json.loads(line)
        if event["setting"] == "professional" and not event.get("procedures"):
            continue
        event.pop("context", None)
        events.append(event)
    return events


def build_events(templates: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    events = []
    for number in range(count):
        template = templates[number % len(templates)]
        patient = dict(template.get("patient") or {})
        patient.setdefault("birth_date", "1950-01-01")
        patient.setdefault("sex", "U")
        patient["id"] = f"PT-B{number // 2 - number // 7:07d}"  # one to three claims each
        events.append(
            {
                **template,
                "event_id": f"bench-{number}",
                "claim_id": f"CLM-B{number:07d}",
                "patient": patient,
                "payer_id": template.get("payer_id") or "AETNA",
            }
        )
    return events


def write_inputs(events: list[dict[str, Any]], folder: Path) -> dict[str, Path]:
    native = folder / "claims.jsonl"
    native.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    created = dt.datetime(2026, 9, 30, 18, 0, tzinfo=dt.UTC)
    parts = []
    for number, guide in enumerate(("837p", "837i"), start=1):
        chosen = [e for e in events if (e["setting"] == "professional") == (guide == "837p")]
        sets = [
            (guide, chosen[i : i + CLAIMS_PER_TRANSACTION])
            for i in range(0, len(chosen), CLAIMS_PER_TRANSACTION)
        ]
        envelope = claimfiles.Envelope("BENCHSENDER", "BENCHRECEIVER", created, number, number)
        parts.append(claimfiles.interchange(envelope, sets))  # type: ignore[arg-type]
    x12 = folder / "claims.x12"
    x12.write_text("".join(parts))
    bundle = folder / "bundle.json"
    bundle.write_text(json.dumps(claimfiles.fhir_bundle(events, "bench", created)))
    return {"native JSON Lines": native, "X12 837": x12, "FHIR Bundle": bundle}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(path: Path) -> dict[str, Any]:
    """Batch mode over one file, in this process: what `claims-stage check` does."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    decider = Decider()
    freeze_long_lived_objects()
    loaded = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as out, path.open("rb") as stream:
        started = time.perf_counter()
        reading = read_input(stream, path.name)
        summary = run_batch(decider, reading.records, Path(out))
        seconds = time.perf_counter() - started
    tally = summary.tally
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "format": reading.format,
        "claims": tally.records,
        "routes": dict(tally.routes),
        "seconds": round(seconds, 2),
        "claims_per_s": round(tally.records / seconds),
        "rss_mib_stage_loaded": round(loaded, 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def _in_fresh_process(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.formats", "--measure", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=Path("out/bench-formats.json"))
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure_one(args.measure)))
        return {}

    with tempfile.TemporaryDirectory() as folder:
        events = build_events(source_events(Decider()), args.claims)
        files = write_inputs(events, Path(folder))
        results = {name: _in_fresh_process(files[name]) for name in FORMATS}

    print(f"batch mode over {args.claims:,} claims, one CPU, a fresh process per format")
    print(
        f"{'format':20} {'MB':>7} {'claims':>8} {'seconds':>8} {'claims/s':>9} {'RSS loaded':>11} {'peak RSS':>9}"
    )
    for name, row in results.items():
        print(
            f"{name:20} {row['bytes'] / 1e6:>7.1f} {row['claims']:>8,} {row['seconds']:>8.2f} "
            f"{row['claims_per_s']:>9,} {row['rss_mib_stage_loaded']:>8.0f} MiB "
            f"{row['peak_rss_mib']:>5.0f} MiB"
        )
        if row["claims"] != args.claims or row["routes"].get("dead_letter"):
            print(f"  warning: {row['routes']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"figures written to {args.json}")
    return results


if __name__ == "__main__":
    main()
