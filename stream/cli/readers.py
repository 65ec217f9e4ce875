"""Reading an input file into records, whatever its format: one record per claim.

The format comes from the content (`detect_format`): an X12 interchange, FHIR (a Bundle,
a Claim or ExplanationOfBenefit, or JSON Lines of them), or the stage's own JSON Lines.
JSON Lines are read a line at a time, as before; an 837 or a Bundle (a document, or a line
of JSON Lines) is split into its claims by the adapters, each claim an `AdaptedClaim` that
`Decider.decide` takes like any other record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

import orjson

from stream.cli.batch import InputRecord
from stream.core.adapters import fhir
from stream.core.adapters.formats import AdaptedClaim, InputFormat, Problem, detect_format
from stream.core.adapters.x12 import InterchangeReader
from stream.core.contracts import FileSource, Origin

DETECT_BYTES = 1 << 16
"""How much of the first line format detection reads (an X12 file may have no newline)."""
MAX_DOCUMENT_BYTES = 64 << 20
"""The largest JSON document (a pretty-printed Bundle) or line (a Bundle on one line) read
(a Bundle of about 25,000 claims): it is held whole to resolve the Bundle's references, and
in Python takes about six times its size."""

Progress = Callable[[int], None]

FORMAT_NAMES: dict[InputFormat, str] = {
    "json-lines": "JSON Lines (encounter events, FHIR Claims or ExplanationOfBenefits)",
    "fhir-bundle-lines": "FHIR Bundles, one a line",
    "json-document": "a JSON document (FHIR Bundle, Claim or ExplanationOfBenefit)",
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
    """Detect the format of `stream` and read it into records; `progress` gets bytes read.

    Every format is read in pieces: memory holds one line, one JSON document (at most
    `MAX_DOCUMENT_BYTES`) or one X12 transaction set at a time, whatever the input's size.
    """
    first = _first_line(stream)
    input_format = detect_format(first)
    source = _Rejoined(first, stream)
    advance = progress or (lambda _: None)
    if input_format == "x12":
        return _x12(source, name, advance)
    if input_format == "json-document":
        return InputReading(input_format, _document(source, name, advance))
    reading = InputReading(input_format, _json_lines(_lines(source, advance), name))
    if not first:
        reading.notes.append("the input is empty: there is nothing to read")
    return reading


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


class _Rejoined:
    """The input with the bytes read for detection put back in front, read forward only
    (a pipe is never read whole to be rewound); `consumed` counts the bytes handed out."""

    def __init__(self, first: bytes, stream: BinaryIO) -> None:
        self._first = first
        self._stream = stream
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            data, self._first = self._first + self._stream.read(), b""
        elif self._first:
            data, self._first = self._first[:size], self._first[size:]
            if len(data) < size:
                data += self._stream.read(size - len(data))
        else:
            data = self._stream.read(size)
        self.consumed += len(data)
        return data

    def readline(self, limit: int) -> bytes:
        """A line, or its first `limit` bytes."""
        if self._first:
            end = self._first.find(b"\n", 0, limit)
            if end != -1 or len(self._first) >= limit:
                cut = end + 1 if end != -1 else limit
                line, self._first = self._first[:cut], self._first[cut:]
            else:
                line, self._first = self._first, b""
                line += self._stream.readline(limit - len(line))
        else:
            line = self._stream.readline(limit)
        self.consumed += len(line)
        return line


@dataclass(frozen=True)
class _TooLong:
    """A line longer than `MAX_DOCUMENT_BYTES`, skipped: its size."""

    size: int


def _lines(source: _Rejoined, advance: Progress) -> Iterator[bytes | _TooLong]:
    """Lines without their newline, as `read_lines`; a line too long to hold is skipped."""
    while True:
        line = source.readline(MAX_DOCUMENT_BYTES + 1)
        if not line:
            return
        advance(len(line))
        if len(line) <= MAX_DOCUMENT_BYTES or line.endswith(b"\n"):
            yield line[:-1] if line.endswith(b"\n") else line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = source.readline(DETECT_BYTES)
            if not line:
                break
            advance(len(line))
            size += len(line)
        yield _TooLong(size)


def _json_lines(lines: Iterator[bytes | _TooLong], name: str) -> Iterator[InputRecord]:
    """One record a line; a line that is a FHIR Bundle is split into its claims."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, _TooLong):
            yield _too_large(line.size, "line"), FileSource(file=name, line=number)
            continue
        document = _bundle(line) if b'"Bundle"' in line else None
        if document is None:
            yield line, FileSource(file=name, line=number)
            continue
        for claim in fhir.read_bundle(document, line=number):
            yield claim, FileSource(file=name, line=number)


def _bundle(data: bytes) -> dict[str, Any] | None:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return document
    return None


def _too_large(size: int, what: str) -> AdaptedClaim:
    return AdaptedClaim(
        raw=b"",
        origin=Origin(format="fhir-r4", claim_position=1),
        claim_id=None,
        kind="too_large",
        problems=(
            Problem(
                (),
                f"the {what} is {size:,} bytes; the stage reads one JSON document of at most "
                f"{MAX_DOCUMENT_BYTES:,} bytes ({MAX_DOCUMENT_BYTES >> 20} MiB) at a time: send "
                "large Bundles as several, one a line, or their resources as JSON Lines; "
                "none of it is kept here",
                "too_large",
            ),
        ),
    )


def _x12(source: _Rejoined, name: str, advance: Progress) -> InputReading:
    reader = InterchangeReader(cast(BinaryIO, source))
    reading = InputReading("x12", iter(()), reader.notes)
    reading.records = _claim_records(reader.claims(), name, lambda: source.consumed, advance)
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


def _document(source: _Rejoined, name: str, advance: Progress) -> Iterator[InputRecord]:
    """One JSON document over several lines: a Bundle is split into its claims; anything
    else is one record (a Claim or ExplanationOfBenefit is decided, the rest become its
    dead letter). A document larger than `MAX_DOCUMENT_BYTES` is a dead letter."""
    data = source.read(MAX_DOCUMENT_BYTES + 1)
    advance(len(data))
    if len(data) > MAX_DOCUMENT_BYTES:
        size = len(data)
        del data
        while chunk := source.read(DETECT_BYTES):
            advance(len(chunk))
            size += len(chunk)
        yield _too_large(size, "JSON document"), FileSource(file=name, line=1)
        return
    document = _bundle(data)
    if document is None:
        yield data, FileSource(file=name, line=1)
        return
    for claim in fhir.read_bundle(document):
        yield claim, FileSource(file=name, line=1)
