"""An X12 input as segments: decoded, its delimiters taken from each ISA, split, bounded.

pyx12 reads an interchange from its fixed-length ISA onwards and stops at the first thing it
cannot parse (a byte-order mark, UTF-16, an ISA one character short, an empty segment).
The stage splits the input itself, so that it can hand pyx12 one transaction set at a time
and keep reading whatever pyx12 makes of the one before:

- the encoding comes from the first bytes: a UTF-8 byte-order mark is dropped; UTF-16 (with
  or without its byte-order mark) is decoded; bytes that are not UTF-8 are kept as they are
  (surrogate escapes), so that the segment holding them is known and its claim's input is
  kept byte for byte;
- each ISA gives the delimiters of its interchange: the element separator after `ISA`, the
  component separator (ISA16) and the segment terminator after it, found by the element
  separators rather than by position, so that an ISA whose fields are not their fixed width
  is still split (and reported);
- text before the first ISA, which no delimiter can split, is one piece of unenveloped text.

Memory is bounded: the input is read in pieces of `CHUNK_BYTES`; a run of more than
`MAX_SEGMENT_CHARS` without a terminator becomes a segment of its first part, flagged
`overlong`, and the rest up to the next terminator is skipped; unenveloped text is kept up to
`MAX_UNENVELOPED_CHARS`.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_BYTES = 1 << 16
MAX_SEGMENT_CHARS = 1 << 16
"""The longest segment kept: the longest 837 segments (HI with twelve composites, K3, NTE)
are a few hundred characters."""
MAX_UNENVELOPED_CHARS = 1 << 20
"""Text before the first ISA kept for its dead letter (the rest is counted, not kept)."""

ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
"""The fixed widths of ISA01..ISA16: an ISA is 106 characters with its terminator."""

_ESCAPED = re.compile("[\udc80-\udcff\ufffd]")
"""Undecodable input: UTF-8 bytes kept as surrogate escapes, or UTF-16 replaced."""
_ISA_START = re.compile(r"(?:^|(?<=[^A-Za-z0-9]))ISA(?=[^A-Za-z0-9\s])")
"""An ISA segment starts: `ISA` followed by its element separator."""


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str
    component: str
    repetition: str
    terminator: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment as sent: its text without terminator, and its number in the input."""

    text: str
    number: int
    id: str
    delimiters: Delimiters
    overlong: bool = False

    @property
    def escaped(self) -> bool:
        """Whether it holds input that is not UTF-8 (or not UTF-16 in a UTF-16 input)."""
        return _ESCAPED.search(self.text) is not None

    def elements(self) -> list[str]:
        return self.text.split(self.delimiters.element)

    def element(self, index: int) -> str:
        parts = self.text.split(self.delimiters.element, index + 1)
        return parts[index] if len(parts) > index else ""

    def with_element(self, index: int, value: str) -> str:
        """The segment's text with one element replaced (a guide ID read with another map)."""
        parts = self.elements()
        if len(parts) > index:
            parts[index] = value
        return self.delimiters.element.join(parts)

    def sent(self) -> str:
        """The segment as it was sent, with its terminator (a line break after it, unless
        the terminator is one): what a dead letter keeps."""
        terminator = self.delimiters.terminator
        return self.text + terminator + ("" if terminator in "\r\n" else "\n")


@dataclass(frozen=True, slots=True)
class Unenveloped:
    """Text no ISA envelope says how to split: before the first ISA, or an ISA that cannot
    be read (fewer than sixteen elements before its end)."""

    text: str
    number: int
    dropped: int
    """Characters beyond `MAX_UNENVELOPED_CHARS`, counted but not kept."""
    unreadable_isa: bool = False


@dataclass(frozen=True, slots=True)
class InterchangeHeader:
    """An ISA read by its element separators: its sixteen elements, the 106-character ISA
    pyx12 needs (each element padded or cut to its width), and what was wrong with it."""

    elements: tuple[str, ...]
    fixed: str
    faults: tuple[str, ...]


def read_isa(segment: Segment) -> InterchangeHeader:
    """The ISA's elements and its fixed-width form; a fault names each element that is not
    its width (the standard fixes them: a receiver finds the delimiters by position)."""
    parts = segment.elements()[1:]
    parts += [""] * (len(ISA_WIDTHS) - len(parts))
    faults = []
    fixed = []
    for number, (value, width) in enumerate(zip(parts, ISA_WIDTHS, strict=False), start=1):
        if len(value) != width:
            faults.append(
                f"ISA{number:02d} has {len(value)} characters where the standard fixes {width}"
            )
        fixed.append(value[:width].ljust(width))
    if len(parts) > len(ISA_WIDTHS):
        faults.append(f"the ISA has {len(parts)} elements where the standard has 16")
    text = segment.delimiters.element.join(["ISA", *fixed]) + segment.delimiters.terminator
    return InterchangeHeader(tuple(parts[: len(ISA_WIDTHS)]), text, tuple(faults))


# --- decoding ----------------------------------------------------------------------------------


def _encoding(head: bytes) -> tuple[str, int, str]:
    """(codec, bytes to skip, error handler) from the first bytes of the input."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3, "surrogateescape"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0, "replace"
    if len(head) >= 2 and head[0] != 0 and head[1] == 0:
        return "utf-16-le", 0, "replace"
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return "utf-16-be", 0, "replace"
    return "utf-8", 0, "surrogateescape"


def decoded(stream: BinaryIO) -> Iterator[str]:
    """The input's text, in pieces: UTF-8 (byte-order mark dropped, undecodable bytes kept
    as surrogate escapes) or UTF-16 (with or without its byte-order mark)."""
    head = stream.read(CHUNK_BYTES)
    codec, skip, errors = _encoding(head)
    decoder = codecs.getincrementaldecoder(codec)(errors=errors)
    chunk = head[skip:]
    while chunk:
        text = decoder.decode(chunk)
        if text:
            yield text
        chunk = stream.read(CHUNK_BYTES)
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


# --- splitting -----------------------------------------------------------------------------


class SegmentReader:
    """The segments of an input, in order, each numbered; text that no ISA envelope splits
    as `Unenveloped` pieces. `push_back` returns one item to be read again."""

    def __init__(self, stream: BinaryIO) -> None:
        self._pieces = decoded(stream)
        self._buffer = ""
        """Text not yet split: after the last terminator found."""
        self._ready: deque[str] = deque()
        """Segments split from the input, not yet read."""
        self._delimiters: Delimiters | None = None
        self._number = 0
        self._back: list[Segment | Unenveloped] = []
        self._items = self._read()

    def __iter__(self) -> Iterator[Segment | Unenveloped]:
        return self

    def __next__(self) -> Segment | Unenveloped:
        if self._back:
            return self._back.pop()
        return next(self._items)

    def push_back(self, item: Segment | Unenveloped) -> None:
        self._back.append(item)

    def _fill(self) -> bool:
        """Read one more piece into the buffer; False at the end of the input."""
        piece = next(self._pieces, None)
        if piece is None:
            return False
        self._buffer += piece
        return True

    def _read(self) -> Iterator[Segment | Unenveloped]:
        while True:
            if self._delimiters is None:
                if not self._more():
                    return
                if not self._at_isa():
                    yield self._unenveloped()
                elif not self._delimiters_of_isa():
                    yield self._unenveloped(unreadable_isa=True)
                continue
            segment = self._next_segment(self._delimiters)
            if segment is None:
                if self._delimiters is not None:
                    return  # the end of the input
                continue  # an ISA with other delimiters: read them first
            yield segment

    def _more(self) -> bool:
        """Whether any text is left, blank text skipped."""
        while True:
            self._buffer = self._buffer.lstrip()
            if self._buffer:
                return True
            if not self._fill():
                return False

    def _at_isa(self) -> bool:
        while len(self._buffer) < 4 and self._fill():
            pass
        return _ISA_START.match(self._buffer) is not None

    def _delimiters_of_isa(self) -> bool:
        """Take the delimiters of the ISA the buffer starts with: the element separator after
        `ISA`, then sixteen elements; ISA16 is the component separator and the character
        after it the segment terminator. False when no such ISA can be read."""
        while True:
            head = self._buffer[:_ISA_READ_CHARS]
            parts = head.split(head[3], 16)
            if len(parts) == 17 and len(parts[16]) >= 2:
                break
            if len(self._buffer) >= _ISA_READ_CHARS or not self._fill():
                return False
        element, component, terminator = head[3], parts[16][0], parts[16][1]
        if terminator.isalnum() or terminator in (element, component):
            return False
        repetition = parts[11][:1] if parts[12].strip() == "00501" else ""
        self._delimiters = Delimiters(element, component, repetition, terminator)
        return True

    def _unenveloped(self, unreadable_isa: bool = False) -> Unenveloped:
        """The text up to the next ISA (or the end of the input), kept up to a bound."""
        kept: list[str] = []
        size = dropped = 0
        while True:
            found = _ISA_START.search(self._buffer, 1)
            # the last characters may start an ISA that the next piece completes
            end = found.start() if found is not None else max(len(self._buffer) - 4, 0)
            if found is None and not self._fill():
                end = len(self._buffer)
            room = max(MAX_UNENVELOPED_CHARS - size, 0)
            kept.append(self._buffer[: min(end, room)])
            size, dropped = size + min(end, room), dropped + max(end - room, 0)
            self._buffer = self._buffer[end:]
            if found is not None or not self._buffer:
                break
        self._number += 1
        return Unenveloped("".join(kept).strip(), self._number, dropped, unreadable_isa)

    def _next_segment(self, delimiters: Delimiters) -> Segment | None:
        """The next segment; None at the end of the input, or (delimiters reset) at an ISA
        whose delimiters are not those of the interchange before it."""
        while True:
            taken = self._next_text(delimiters.terminator)
            if taken is None:
                return None
            text, overlong = taken
            text = text.lstrip()
            if text:
                break
        identifier = text.split(delimiters.element, 1)[0][:3]
        if identifier == "ISA" and not self._same_delimiters(text, delimiters):
            return None
        if len(text) > MAX_SEGMENT_CHARS:
            text, overlong = text[:MAX_SEGMENT_CHARS], True
        self._number += 1
        return Segment(text, self._number, identifier, delimiters, overlong)

    def _next_text(self, terminator: str) -> tuple[str, bool] | None:
        while not self._ready:
            if terminator in self._buffer:
                *complete, self._buffer = self._buffer.split(terminator)
                self._ready.extend(complete)
            elif len(self._buffer) > MAX_SEGMENT_CHARS:
                return self._overlong(terminator), True
            elif not self._fill():
                text, self._buffer = self._buffer, ""
                return (text, False) if text.strip() else None
        return self._ready.popleft(), False

    def _same_delimiters(self, text: str, delimiters: Delimiters) -> bool:
        """Whether an ISA met while splitting by the delimiters of the interchange before it
        has the same ones; if not, the text from it on is split again by its own."""
        parts = text.split(text[3:4] or delimiters.element, 16)
        if len(parts) == 17 and parts[16] == delimiters.component and text[3] == delimiters.element:
            return True
        self._buffer = delimiters.terminator.join([text, *self._ready, self._buffer])
        self._ready.clear()
        self._delimiters = None
        return False

    def _overlong(self, terminator: str) -> str:
        """A segment with no terminator in `MAX_SEGMENT_CHARS`: its first part is kept,
        the rest up to the next terminator skipped."""
        text = self._buffer[:MAX_SEGMENT_CHARS]
        self._buffer = ""
        while self._fill():
            end = self._buffer.find(terminator)
            if end != -1:
                self._buffer = self._buffer[end + 1 :]
                break
            self._buffer = ""
        return text


_ISA_READ_CHARS = 1_000
"""How far an ISA's sixteen elements are looked for (a standard ISA is 106 characters)."""
