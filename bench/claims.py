"""Claims for the benchmarks: shaped like real oncology claims, as many as asked for.

The encounter events of the example stream with 2 to 8 diagnoses (context filled, every
setting, every rule family), cycled with unique event and claim IDs. With `spread_years`,
each claim's dates move to the same day of another supported year, round robin, so the
stage reads every code-set year; the codes stay as coded (a code a year does not have is
judged so, as it would be in production).

    python -m bench.claims --count 100000 --out out/bench-claims.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stream.core.contracts import EncounterEvent

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "schemas" / "examples" / "encounters.jsonl"
YEARS = (2023, 2024, 2025, 2026)
"""Calendar years the dates are spread over (with their own month and day, so FY2023 to
FY2027 all occur)."""


def typical_events(path: Path = EXAMPLES) -> list[dict[str, Any]]:
    """The example stream's encounter events (contract-valid) with 2 to 8 diagnoses."""
    events = []
    for line in path.read_bytes().splitlines():
        try:
            event = EncounterEvent.model_validate_json(line)
        except ValueError:
            continue
        if 2 <= len(event.diagnoses) <= 8:
            events.append(orjson.loads(line))
    return events


def _moved(day: str, year: int) -> str:
    date = dt.date.fromisoformat(day)
    try:
        return date.replace(year=year).isoformat()
    except ValueError:  # 29 February
        return date.replace(year=year, day=28).isoformat()


def claims(count: int, spread_years: bool = True) -> Iterator[bytes]:
    """`count` encoded encounter events, unique IDs, cycling over the typical events."""
    events = typical_events()
    for n in range(count):
        event = dict(events[n % len(events)])
        event["event_id"] = f"{event['event_id']}-{n}"
        event["claim_id"] = f"{event['claim_id']}-{n}"
        if spread_years:
            year = YEARS[n % len(YEARS)]
            event["date_of_service"] = _moved(event["date_of_service"], year)
            if event.get("discharge_date"):
                event["discharge_date"] = _moved(event["discharge_date"], year)
        yield orjson.dumps(event)


def write_claims(path: Path, count: int, spread_years: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as sink:
        for claim in claims(count, spread_years):
            sink.write(claim + b"\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("out/bench-claims.jsonl"))
    parser.add_argument("--one-year", action="store_true", help="Keep the dates as they are.")
    args = parser.parse_args()
    write_claims(args.out, args.count, not args.one_year)
    print(f"wrote {args.count:,} claims to {args.out}")


if __name__ == "__main__":
    main()
