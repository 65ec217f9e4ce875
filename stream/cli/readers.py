"""Reading an input file into records, whatever its format: one record per claim.

The format comes from the content (`detect_format`): an X12 interchange, FHIR (a Bundle,
a Claim, or JSON Lines of Claims), or the stage's own JSON Lines. JSON Lines are read a
line at a time, as before; an 837 or a Bundle is split into its claims by the adapters,
each claim an `AdaptedClaim` that `Decider.decide` takes like any other record.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson

from stream.cli.batch import InputRecord, line_records
from stream.core.adapters import fhir
from stream.core.adapters.formats import AdaptedClaim, InputFormat, detect_format
from stream.core.adapters.x12 import InterchangeReader
from stream.core.contracts import FileSource

DETECT_BYTES = 1 << 16
"""How much of the first line format detection reads (an X12 file may have no newline)."""

Progress = Callable[[int], None]

FORMAT_NAMES: dict[InputFormat, str] = {
    "json-lines": "JSON Lines (encounter events or FHIR Claims)",
    "fhir-bundle-lines": "FHIR Bundles, one a line",
    "json-document": "a JSON document (FHIR Bundle or Claim)",
    "x12": "X12 837 interchanges",
}


@dataclass
class InputReading:
    """An input being read: its format, its records, and notes that fail no record."""

    format: InputFormat
    records: Iterator[InputRecord]
    notes: list[str] = field(default_factory=list)

    @property
    def unit(self) -> str:
        """What one record is, for summaries: a line, or a claim of a split document."""
        return "lines" if self.format == "json-lines" else "claims"


def read_input(stream: BinaryIO, name: str, progress: Progress | None = None) -> InputReading:
    """Detect the format of `stream` and read it into records; `progress` gets bytes read."""
    first = _first_line(stream)
    input_format = detect_format(first)
    advance = progress or (lambda _: None)
    if input_format == "x12":
        return _x12(_seekable(stream, first), name, advance)
    if input_format == "json-document":
        return InputReading(input_format, _document(first + stream.read(), name, advance))
    lines = _lines(first, stream, advance)
    if input_format == "fhir-bundle-lines":
        return InputReading(input_format, _bundle_lines(lines, name))
    return InputReading(input_format, line_records(lines, name))


def _first_line(stream: BinaryIO) -> bytes:
    """The start of the input up to its first newline or `DETECT_BYTES`, whichever first."""
    chunks: list[bytes] = []
    size = 0
    while size < DETECT_BYTES:
        chunk = stream.readline(DETECT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") and chunk.strip():
            break
    return b"".join(chunks)


def _lines(first: bytes, stream: BinaryIO, advance: Progress) -> Iterator[bytes]:
    """Lines without their newline, the bytes read for detection first; as `read_lines`."""
    pending = first
    if pending and not pending.endswith(b"\n"):
        pending += stream.readline()
    for line in _split_lines(pending):
        advance(len(line) + 1)
        yield line
    for line in stream:
        advance(len(line))
        yield line[:-1] if line.endswith(b"\n") else line


def _split_lines(data: bytes) -> Iterator[bytes]:
    if not data:
        return
    body = data[:-1] if data.endswith(b"\n") else data
    yield from body.split(b"\n")


def _seekable(stream: BinaryIO, first: bytes) -> BinaryIO:
    """The whole input, rewound: in place for a file, in memory for a pipe."""
    if stream.seekable():
        stream.seek(0)
        return stream
    return io.BytesIO(first + stream.read())


def _x12(stream: BinaryIO, name: str, advance: Progress) -> InputReading:
    reader = InterchangeReader(stream)
    reading = InputReading("x12", iter(()), reader.notes)
    reading.records = _claim_records(reader.claims(), name, lambda: stream.tell(), advance)
    return reading


def _claim_records(
    claims: Iterator[AdaptedClaim], name: str, position: Callable[[], int], advance: Progress
) -> Iterator[InputRecord]:
    done = 0
    for claim in claims:
        now = position()
        advance(now - done)
        done = now
        yield claim, FileSource(file=name, line=claim.line)


def _document(data: bytes, name: str, advance: Progress) -> Iterator[InputRecord]:
    """One JSON document over several lines: a Bundle is split into its claims; anything
    else is one record (a Claim is decided, the rest become its dead letter)."""
    advance(len(data))
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        for claim in fhir.read_bundle(document):
            yield claim, FileSource(file=name, line=1)
        return
    yield data, FileSource(file=name, line=1)


def _bundle_lines(lines: Iterator[bytes], name: str) -> Iterator[InputRecord]:
    """One Bundle a line, each split into its claims; a line that is not a Bundle is one
    record, as in JSON Lines."""
    for number, line in enumerate(lines, start=1):
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            for claim in fhir.read_bundle(document, line=number):
                yield claim, FileSource(file=name, line=number)
        else:
            yield line, FileSource(file=name, line=number)
