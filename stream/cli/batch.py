"""Batch mode: the decision function over a JSON Lines file, with no broker.

Every input line yields exactly one output line, in `validated.jsonl`, `rejected.jsonl`
or `dead-letter.jsonl`; `source` is the file and the line number.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from stream.core.adapters.formats import AdaptedClaim
from stream.core.contracts import FileSource, Route, Source
from stream.core.decision import Decider
from stream.core.tally import Tally

OUTPUT_FILES: dict[Route, str] = {
    "validated": "validated.jsonl",
    "rejected": "rejected.jsonl",
    "dead_letter": "dead-letter.jsonl",
}


@dataclass
class BatchSummary:
    """What a batch run did: the tally of its outputs and how long it took."""

    tally: Tally = field(default_factory=Tally)
    seconds: float = 0.0


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines without their terminating newline, everything else byte for byte.

    A blank line is a line (it becomes a dead letter); a final newline does not start one.
    """
    for line in stream:
        yield line[:-1] if line.endswith(b"\n") else line


InputRecord = tuple[bytes | AdaptedClaim, Source]
"""One input record as the batch reads it: the value to decide and where it came from.

The value is a line's bytes, or a claim an adapter read from an 837 or a FHIR Bundle
(`stream.cli.readers` reads every format)."""


def line_records(lines: Iterable[bytes], source_name: str) -> Iterator[InputRecord]:
    """JSON Lines: one record per line, its source the file and the line number."""
    for number, line in enumerate(lines, start=1):
        yield line, FileSource(file=source_name, line=number)


def run_batch(
    decider: Decider,
    records: Iterable[InputRecord],
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Decide every record and write it to its output file; `progress` gets bytes consumed."""
    summary = BatchSummary()
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    handles = {route: (out_dir / name).open("wb") for route, name in OUTPUT_FILES.items()}
    try:
        for value, source in records:
            output = decider.decide(value, source)
            handles[output.route].write(output.value + b"\n")
            summary.tally.record(output)
            if progress is not None:
                progress(len(value) + 1)
    finally:
        for handle in handles.values():
            handle.close()
    summary.seconds = time.perf_counter() - started
    return summary
