"""Hostile input: contract-shaped encounter events built to cost the stage memory and time.

    python -m bench.hostile [--count 400] [--size 880000] [--jobs 1]

`hostile_events` is the one generator of such records, for benchmarks and tests alike: each
is a valid JSON encounter event of about `size_bytes` bytes whose 24 diagnosis codes are long
garbage strings, each different from every other (so no cache can share them). Run as a
program, it writes `count` of them to a file, runs `claims-stage check` on it in a child
process, and prints the child's peak resident memory, its CPU seconds and the outputs per
route: every record must have exactly one output.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson

HOSTILE_DIAGNOSES = 24
"""Garbage codes per record: one below the contract's 25, so the count alone is legal."""
DEFAULT_COUNT = 400
DEFAULT_SIZE = 880_000
_ALPHABET = (string.ascii_uppercase + string.digits).encode()


def _skeleton(index: int) -> dict[str, object]:
    return {
        "schema_version": 1,
        "event_id": f"hostile-{index:08d}",
        "claim_id": f"HOSTILE-{index:08d}",
        "setting": "outpatient",
        "date_of_service": "2026-03-02",
        "context": {"reason_for_encounter": "Restaging", "tnm": "T2N0M1"},
        "diagnoses": [],
    }


def hostile_event(index: int, size_bytes: int = DEFAULT_SIZE, seed: int = 0) -> bytes:
    """One hostile record of about `size_bytes` bytes (never less than a few hundred)."""
    document = _skeleton(index)
    overhead = len(orjson.dumps(document)) + HOSTILE_DIAGNOSES * len(b'{"sequence":25,"code":""},')
    width = max((size_bytes - overhead) // HOSTILE_DIAGNOSES, 16)
    chooser = random.Random(seed * 1_000_003 + index)
    document["diagnoses"] = [
        {"sequence": n, "code": bytes(chooser.choices(_ALPHABET, k=width)).decode("ascii")}
        for n in range(1, HOSTILE_DIAGNOSES + 1)
    ]
    return orjson.dumps(document)


def hostile_events(count: int, size_bytes: int = DEFAULT_SIZE, seed: int = 0) -> Iterator[bytes]:
    """`count` hostile records (UTF-8 JSON, no newline), each different from the others."""
    for index in range(count):
        yield hostile_event(index, size_bytes, seed)


def write_hostile_file(path: Path, count: int, size_bytes: int = DEFAULT_SIZE) -> int:
    """Write `count` hostile records as JSON Lines; returns the bytes written."""
    written = 0
    with path.open("wb") as out:
        for record in hostile_events(count, size_bytes):
            written += out.write(record + b"\n")
    return written


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for _ in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="bytes per record")
    parser.add_argument("--jobs", type=int, default=1, help="check --jobs")
    parser.add_argument(
        "--command",
        default=f"{sys.executable} -m stream",
        help="the claims-stage command to measure (another checkout's, for a before/after)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="claims-hostile-") as folder:
        source, out = Path(folder) / "hostile.jsonl", Path(folder) / "out"
        size = write_hostile_file(source, args.count, args.size)
        command = [*args.command.split(), "check", str(source), "--out", str(out)]
        command += ["--jobs", str(args.jobs)]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, check=False)
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        outputs = {p.name: _count_lines(p) for p in sorted(out.glob("*.jsonl"))}
    total = sum(outputs.values())
    print(f"check on {args.count} hostile records of ~{args.size:,} bytes ({size / 2**20:.0f} MiB)")
    print(f"  exit status      {finished.returncode}")
    print(f"  peak RSS         {usage.ru_maxrss / 1024:,.0f} MiB")
    print(f"  CPU              {usage.ru_utime + usage.ru_stime:.1f} s ({seconds:.1f} s wall)")
    print(f"  outputs          {total} ({', '.join(f'{k} {v}' for k, v in outputs.items())})")
    if finished.returncode or total != args.count:
        sys.stderr.write(finished.stderr.decode(errors="replace")[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
