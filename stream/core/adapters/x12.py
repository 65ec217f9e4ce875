"""ASC X12 837 claims (837P 005010X222A1/A2, 837I 005010X223A2/A3) into events.

The input is split into segments by the stage (`x12_segments`), and each transaction set
(ST..SE) is handed to pyx12 on its own, inside its interchange's ISA and group's GS and a
GE and IEA that close them. pyx12 validates every segment against the implementation
guide's map: segment and loop placement, mandatory segments, element lengths, codes and
dates, the transaction set's segment count and HL numbering. The interchange and group
trailers (GE, IEA counts and control numbers) and duplicate control numbers are checked by
the stage. Guides 005010X222A2 and 005010X223A3 (X12's consolidated 2014 guides, whose
segments the stage reads are those of 005010X222A1 and 005010X223A2) are validated with
pyx12's A1 and A2 maps; `origin.implementation_guide` keeps the label as sent.

**What the stage reads** decides what a problem does. A problem in a segment the stage reads
fails the claims it concerns (a dead letter naming the segment, its position and element):

| segment | loop | read |
|---|---|---|
| ISA, GS, ST, SE | envelope | sender (ISA06), control numbers (ISA13, GS06, ST02), guide (GS08, ST03), the transaction set's end |
| HL | 2000A/B/C | which billing provider, subscriber and patient a claim belongs to (HL02, HL03) |
| NM1 | 2010BB | the payer ID (NM109) |
| DMG | 2010BA, 2010CA | birth date and sex of the patient (the subscriber, or the dependent) |
| CLM | 2300 | claim ID (CLM01), place of service or type of bill (CLM05) |
| HI | 2300 | the diagnoses (ABK/ABF, BK/BF), and any HI whose qualifier is not one of the kinds below |
| DTP | 2300, 2400 | 434 statement dates, 435 admission (837I), 472 service date |
| LX, SV1, SV2 | 2400 | line number, procedure code, modifiers, units or minutes (SV103 MJ), pointers |

A problem anywhere else (PWK, REF, NM1 of providers, N3/N4 addresses, the header's
submitter and receiver, HI segments of admitting, reason-for-visit and external-cause
diagnoses or of occurrence, value, condition and procedure codes, DTP of other dates, HL01
numbering) becomes a note in the claim's `origin` (segment, position, message) and does not
stop the claim. Problems in the interchange's ISA or group's GS fail their claims;
problems of GE and IEA are notes of the whole input (`InterchangeReader.notes`).

**Nothing crashes, nothing is lost.** Each CLM gives one claim, decided or a dead letter
that keeps its segments with the envelope, header and loops around it. When pyx12 fails on
a transaction set (an exception, a guide it has no map for), its claims are split by the
stage without pyx12 and each is a dead letter that says why; the transaction sets before
and after are read as usual. A failure of the stage's own reading fails the claim being
read (`internal_error`). Text before the first ISA (a transaction without its envelope) is
one dead letter that says so; a transaction set or interchange with no claim is one dead
letter; segments outside any transaction set are a dead letter when they hold a claim.

**Bounded.** Claims are released at the end of their transaction set (SE), so that a
problem found there (the segment count) fails them; a transaction set holds at most
`MAX_HELD_CLAIMS` claims (the guides recommend 5,000) and `MAX_HELD_CHARS` of text before
its claims are released early, with a note. A loop or claim larger than
`MAX_CONTEXT_CHARS` is a dead letter keeping its first part; a context keeps at most
`MAX_PROBLEMS` problems and notes.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO, TextIO, TypeVar, cast

import pyx12.map_if
import pyx12.map_index
import pyx12.params
import pyx12.x12context

from stream.core.adapters.formats import (
    AdaptedClaim,
    ClaimFacts,
    Problem,
    ServiceLine,
    capped_notes,
    encounter_event,
    printable,
    whole_units,
)
from stream.core.adapters.x12_segments import (
    MAX_SEGMENT_CHARS,
    InterchangeHeader,
    Segment,
    SegmentReader,
    Unenveloped,
    read_isa,
)
from stream.core.contracts import DeadLetterKind, Origin, OriginFormat, OriginNote, Setting, Sex

GUIDES: dict[str, OriginFormat] = {
    "005010X222A1": "x12-837p",
    "005010X222A2": "x12-837p",
    "005010X223A2": "x12-837i",
    "005010X223A3": "x12-837i",
}
"""The implementation guides read."""
READ_WITH = {"005010X222A2": "005010X222A1", "005010X223A3": "005010X223A2"}
"""Guides pyx12 has no map for, validated with the map of the revision before: what the
stage reads is the same in both."""

Opened = TypeVar("Opened")

PRINCIPAL_QUALIFIERS = frozenset({"ABK", "BK"})
OTHER_QUALIFIERS = frozenset({"ABF", "BF"})
"""HI qualifiers of the diagnosis sequence: ICD-10-CM (ABK, ABF) and ICD-9-CM (BK, BF).

An ICD-9-CM code is read like any other code and fails MET-001 (not ICD-10-CM), as a
mistyped code does."""
UNREAD_HI_QUALIFIERS = frozenset(
    {
        *("ABJ", "BJ", "APR", "PR", "ABN", "BN"),  # admitting, reason for visit, external cause
        *("BBR", "BR", "CAH", "BBQ", "BQ", "BP", "BO"),  # procedure codes
        *("BH", "BI", "BE", "BG", "TC", "DR"),  # occurrence, span, value, condition, DRG
    }
)
"""HI qualifiers of codes the rules do not judge: the stage does not read these HI segments.
The admitting diagnosis, the patient's reason for visit and external causes are not in the
diagnosis sequence the rules judge."""
READ_DATES = frozenset({"434", "435", "472"})

MAX_HELD_CLAIMS = 5_000
MAX_HELD_CHARS = 64 << 20
MAX_CONTEXT_CHARS = 4 << 20
MAX_PROBLEMS = 100

_SEGMENT_ERRORS = {
    "1": "unrecognized_segment",
    "2": "unexpected_segment",
    "3": "mandatory_segment_missing",
    "4": "loop_over_maximum",
    "5": "segment_over_maximum_use",
    "6": "segment_not_in_transaction_set",
    "7": "segment_out_of_sequence",
    "8": "segment_has_element_errors",
    "HL1": "hl_numbering",
    "HL2": "hl_parent",
    "LX": "lx_numbering",
    "not_utf8": "not_utf8",
}
_ELEMENT_ERRORS = {
    "1": "mandatory_element_missing",
    "2": "conditional_element_missing",
    "3": "too_many_elements",
    "4": "element_too_short",
    "5": "element_too_long",
    "6": "invalid_character",
    "7": "invalid_code_value",
    "8": "invalid_date",
    "9": "invalid_time",
    "10": "exclusion_condition_violated",
}
_ENVELOPE_ERRORS = {
    "isa": {"025": "duplicate_control_number"},
    "gs": {"6": "duplicate_control_number"},
    "st": {
        "2": "trailer_missing",
        "3": "control_number_mismatch",
        "4": "segment_count_mismatch",
        "23": "duplicate_control_number",
    },
}
_READ_SEGMENTS = frozenset({"ISA", "GS", "ST", "SE", "HL", "CLM", "LX", "SV1", "SV2"})
_CLAIM_LOOP = "2300"
_LEVELS = ("2000A", "2000B", "2000C")
_HL_LEVELS = {"20": "2000A", "22": "2000B", "23": "2000C"}
_ENVELOPE_IDS = frozenset({"ISA", "GS", "ST", "GE", "IEA"})
_CLM = re.compile(r"(?:^|[^A-Za-z0-9])CLM[^A-Za-z0-9\s]")


# --- pyx12 ---------------------------------------------------------------------------------

PARAMS = pyx12.params.params()


@functools.cache
def _map_index() -> Any:
    return pyx12.map_index.map_index()


_load_map_file = pyx12.map_if.load_map_file


@functools.cache
def _shared_map(map_file: str, param: Any, map_path: str | None = None) -> Any:
    return _load_map_file(map_file, param, map_path)


# pyx12 parses a guide's XML map (0.1 to 0.25 s) for each reader; the stage starts a reader
# per transaction set, so the maps are parsed once per process and shared. pyx12 keeps what
# it has read in the reader (its walker's counters), never in the maps.
setattr(pyx12.map_if, "load_map_file", _shared_map)  # noqa: B010


# --- what pyx12 reports ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Raised:
    """One problem as pyx12 reported it, with the segment it was reported at."""

    scope: str  # isa, gs, st, seg or ele
    code: str
    message: str
    value: str | None
    element: str | None
    loops: tuple[str, ...]
    segment_id: str | None
    position: int | None
    missing: bool
    """A mandatory segment or loop that is absent: reported at a later segment, it
    concerns the loop that was open before that segment."""


class _Collector:
    """pyx12's error-handler interface, collecting problems with where they were found."""

    def __init__(self, loops: Callable[[Any], tuple[str, ...]]) -> None:
        self._loops_of = loops
        self.raised: list[_Raised] = []
        self._place: tuple[str, ...] | Any = ()
        self._segment_id: str | None = None
        self._position: int | None = None
        self._missing = False

    def take(self) -> list[_Raised]:
        raised, self.raised = self.raised, []
        return raised

    # the cursor: which segment the following errors are about
    def add_isa_loop(self, seg: Any, src: Any) -> None:
        self._cursor(("ISA_LOOP",), seg, src.get_seg_count())

    def add_gs_loop(self, seg: Any, src: Any) -> None:
        self._cursor(("ISA_LOOP", "GS_LOOP"), seg, src.get_seg_count())

    def add_st_loop(self, seg: Any, src: Any) -> None:
        self._cursor(("ISA_LOOP", "GS_LOOP", "ST_LOOP"), seg, src.get_seg_count())

    def add_seg(self, map_node: Any, seg: Any, seg_count: int, cur_line: int, ls_id: Any) -> None:
        self._cursor(map_node, seg, seg_count, map_node.id)

    def _cursor(
        self,
        place: tuple[str, ...] | Any,
        seg: Any,
        position: int | None,
        map_id: str | None = None,
    ) -> None:
        # The loops of a map node are worked out only when a problem is raised there:
        # pyx12 moves this cursor at every segment.
        self._place = place
        # pyx12 reports a missing segment or loop with a stand-in segment of no elements
        self._missing = seg is None or len(seg) == 0
        self._segment_id = seg.get_seg_id() if seg is not None else map_id
        self._position = position

    def add_ele(self, map_node: Any) -> None:
        pass

    # the problems
    def isa_error(self, err_cde: str, err_str: str) -> None:
        self._raise("isa", err_cde, err_str)

    def gs_error(self, err_cde: str, err_str: str) -> None:
        self._raise("gs", err_cde, err_str)

    def st_error(self, err_cde: str, err_str: str) -> None:
        self._raise("st", err_cde, err_str)

    def seg_error(
        self, err_cde: str, err_str: str, err_value: str | None = None, src_line: Any = None
    ) -> None:
        self._raise("seg", err_cde, err_str, err_value)

    def ele_error(
        self, err_cde: str, err_str: str, bad_value: str | None, refdes: str | None = None
    ) -> None:
        self._raise("ele", err_cde, err_str, bad_value, refdes)

    def _raise(
        self,
        scope: str,
        code: str,
        message: str,
        value: str | None = None,
        element: str | None = None,
    ) -> None:
        self.raised.append(
            _Raised(
                scope,
                code,
                message,
                value,
                element,
                self._place if isinstance(self._place, tuple) else self._loops_of(self._place),
                self._segment_id,
                self._position,
                self._missing and scope == "seg" and code == "3",
            )
        )

    def handle_errors(self, err_list: list[tuple[str, str, str, Any, Any]]) -> None:
        for scope, code, message, value, _ in err_list:
            self._raise(scope, code, message, value)

    def close_isa_loop(self, node: Any, seg: Any, src: Any) -> None:
        pass

    def close_gs_loop(self, node: Any, seg: Any, src: Any) -> None:
        pass

    def close_st_loop(self, node: Any, seg: Any, src: Any) -> None:
        pass


def _at_trailer(raised: _Raised, node: Any) -> _Raised:
    """pyx12 checks the SE before it moves its cursor there: put the location right."""
    if raised.missing or raised.scope == "ele":
        return raised
    loops = ("ISA_LOOP", "GS_LOOP", "ST_LOOP")
    return replace(raised, loops=loops, segment_id="SE", position=node.seg_count + 1)


def loops_of(map_node: Any) -> tuple[str, ...]:
    """The loop IDs around a map node, outermost first (`ISA_LOOP`, ..., `2300`)."""
    parts = [part for part in map_node.get_path().split("/") if part]
    return tuple(parts if map_node.is_loop() else parts[:-1])


class _Loops:
    """`loops_of`, remembered per map node: pyx12 builds a node's path anew on each call."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[Any, tuple[str, ...]]] = {}

    def __call__(self, map_node: Any) -> tuple[str, ...]:
        known = self._known.get(id(map_node))
        if known is None or known[0] is not map_node:
            known = (map_node, loops_of(map_node))
            self._known[id(map_node)] = known
        return known[1]


def _loop(loops: tuple[str, ...]) -> str:
    """The innermost numbered loop (`2400`), else the innermost loop."""
    loop = next((loop for loop in reversed(loops) if loop[:1].isdigit()), None)
    return loop or (loops[-1] if loops else "ISA_LOOP")


def _kind(raised: _Raised) -> str:
    names = {"ele": _ELEMENT_ERRORS, "seg": _SEGMENT_ERRORS}.get(raised.scope)
    if names is None:
        return "x12_" + _ENVELOPE_ERRORS.get(raised.scope, {}).get(raised.code, "envelope_error")
    return "x12_" + names.get(raised.code, f"{raised.scope}_error")


def _problem(raised: _Raised, line: int) -> Problem:
    loop = _loop(raised.loops)
    segment = raised.segment_id or "?"
    if raised.missing:
        where = f"loop {loop} (noticed at position {raised.position}, line {line})"
    else:
        where = f"{segment} segment at position {raised.position} (line {line}), loop {loop}"
    loc: tuple[str | int, ...] = (loop, segment)
    if raised.position is not None and not raised.missing:
        loc += (raised.position,)
    if raised.element:
        loc += (raised.element,)
    return Problem(loc=loc, message=printable(f"{where}: {raised.message}"), type=_kind(raised))


def _note(raised: _Raised, line: int) -> OriginNote:
    return OriginNote(
        message=_problem(raised, line).message,
        type=_kind(raised),
        segment=raised.segment_id,
        position=None if raised.missing else raised.position,
        loop=_loop(raised.loops),
        element=raised.element,
    )


# --- what the stage reads -------------------------------------------------------------------


def reads(raised: _Raised, segment: Segment | None, institutional: bool = True) -> bool:
    """Whether a problem is in a segment (or a missing segment) the stage reads: the
    envelope, the hierarchy, and the segments the encounter event is read from. `segment`
    is the segment the problem was reported at, when it is the problem's own; the dates
    read are 472 on an 837P, and 434, 435 and 472 on an 837I."""
    if raised.scope in ("isa", "gs", "st"):
        return True
    segment_id = raised.segment_id or ""
    if segment_id in _READ_SEGMENTS:
        return True
    loop = _loop(raised.loops)
    own = segment if segment is not None and segment.id == segment_id else None
    if segment_id == "HI":
        return own is None or _hi_qualifier(own) not in UNREAD_HI_QUALIFIERS
    if segment_id == "DTP":
        qualifier = own.element(1) if own is not None else ""
        read = READ_DATES if institutional else READ_DATES - {"434", "435"}
        return qualifier in read or not (qualifier.isdigit() and len(qualifier) == 3)
    if segment_id == "DMG":
        return loop in ("2010BA", "2010CA")
    return segment_id == "NM1" and loop == "2010BB"


def _hi_qualifier(segment: Segment) -> str:
    return segment.element(1).split(segment.delimiters.component, 1)[0]


# --- the loops a claim sits in --------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """A loop instance: its segments (as sent), the problems that fail the claims in it,
    and the notes that do not."""

    segments: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[OriginNote] = field(default_factory=list)
    kind: DeadLetterKind = "contract_violation"
    size: int = 0
    dropped: int = 0
    """Problems and notes beyond `MAX_PROBLEMS`, counted."""

    def add(self, segment: Segment) -> int:
        """Keep a segment's text; the characters kept (0 past `MAX_CONTEXT_CHARS`)."""
        text = segment.sent()
        if self.size + len(text) > MAX_CONTEXT_CHARS:
            if self.size <= MAX_CONTEXT_CHARS:
                self.size = MAX_CONTEXT_CHARS + 1
                self.fail(
                    Problem(
                        (segment.id, segment.number),
                        f"the loop holding segment {segment.number} is larger than "
                        f"{MAX_CONTEXT_CHARS >> 20} MiB: the stage keeps its first part and "
                        "does not read it",
                        "x12_too_large",
                    )
                )
            return 0
        self.segments.append(text)
        self.size += len(text)
        return len(text)

    def fail(self, problem: Problem, kind: DeadLetterKind | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.dropped += 1
        if kind is not None and self.kind == "contract_violation":
            self.kind = kind

    def note(self, note: OriginNote) -> None:
        if len(self.notes) < MAX_PROBLEMS:
            self.notes.append(note)
        else:
            self.dropped += 1


@dataclass(slots=True)
class _Envelope(_Context):
    """An interchange (ISA), group (GS) or transaction set (ST)."""

    control_number: str | None = None
    detail: str | None = None  # ISA06 sender, GS08 or ST03 guide
    count: int = 0  # groups of an interchange, transaction sets of a group
    released: int = 0  # claims (and dead letters) released from it
    seen: set[str] = field(default_factory=set)  # control numbers of its groups or sets
    header: InterchangeHeader | None = None
    fields: list[str] = field(default_factory=list)  # a group's GS elements


@dataclass(slots=True)
class _Level(_Context):
    """A billing provider (2000A), subscriber (2000B) or patient (2000C) loop."""

    loop: str = ""
    birth_date: dt.date | None = None
    sex: Sex | None = None
    payer_id: str | None = None
    claims: int = 0


@dataclass(slots=True)
class _Draft(_Context):
    """A claim being read: its 2300 loop and the 2400 service lines in it."""

    position: int = 0
    line: int = 0
    chain: tuple[_Level, ...] = ()
    claim_id: str | None = None
    facility: str | None = None  # CLM05-1: place of service (837P), type of bill (837I)
    frequency: str | None = None  # CLM05-3
    statement: tuple[dt.date, dt.date] | None = None
    admission: dt.date | None = None
    diagnoses: list[str] = field(default_factory=list)
    service_lines: list[ServiceLine] = field(default_factory=list)
    service_dates: list[dt.date] = field(default_factory=list)
    places: dict[tuple[str | int, ...], str] = field(default_factory=dict)
    current_line: int | None = None


def _date(value: str | None) -> dt.date | None:
    """A D8 date (CCYYMMDD), or the first date of an RD8 range; None when unreadable
    (pyx12 has then reported the element)."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _statement(value: str | None) -> tuple[dt.date, dt.date] | None:
    start, _, end = (value or "").partition("-")
    first, last = _date(start), _date(end or start)
    return (first, last) if first and last else None


_SEXES: dict[str, Sex] = {"F": "F", "M": "M", "U": "U"}


def _sex(value: str | None) -> Sex | None:
    return _SEXES.get(value or "")


def _opened(envelope: Opened | None, what: str) -> Opened:
    """An envelope the reader's state says is open. Its absence is a fault of the reader,
    not of the file: an explicit error (an `internal_error` dead letter), not an assert."""
    if envelope is None:
        raise RuntimeError(f"the X12 reader has no open {what} here")
    return envelope


# --- pyx12's input: one transaction set ------------------------------------------------------


class _Feed:
    """What pyx12 reads for one transaction set: its interchange's ISA (fixed width) and
    group's GS, the transaction set's segments as the stage splits them, then a GE and an
    IEA that close the group and interchange. `fed` holds each segment handed over and not
    yet paired with pyx12's node for it (None for the envelope around the set)."""

    def __init__(
        self,
        source: SegmentReader,
        interchange: _Envelope,
        group: _Envelope,
        first: Segment,
        guide: str,
    ) -> None:
        header = _opened(interchange.header, "ISA")
        terminator = first.delimiters.terminator
        element = first.delimiters.element
        group_number = group.control_number or "1"
        guide = READ_WITH.get(guide, guide)
        self._source = source
        self._terminator = terminator
        self._buffer = ""
        self._head: deque[tuple[Segment | None, str]] = deque(
            [
                (None, header.fixed),
                (None, element.join(["GS", *(group.fields + [""] * 8)[1:8], guide]) + terminator),
                (first, _for_pyx12(first)),
            ]
        )
        self._tail = [
            element.join(["GE", "1", group_number]),
            element.join(["IEA", "1", header.elements[12]]),
        ]
        self.fed: deque[Segment | None] = deque()
        self.trailer_read = False
        """The transaction set's SE was read."""
        self.ended = False
        """Every segment of the transaction set was read."""

    closed = False
    """pyx12 tells a file object from a path by this attribute."""

    def read(self, size: int | None = -1) -> str:
        wanted = size if size is not None and size >= 0 else 1 << 62
        while len(self._buffer) < wanted:
            piece = self._next_piece()
            if piece is None:
                break
            self._buffer += piece
        text, self._buffer = self._buffer[:wanted], self._buffer[wanted:]
        return text

    def _next_piece(self) -> str | None:
        if self._head:
            segment, text = self._head.popleft()
            self.fed.append(segment)
            return text + (self._terminator if segment is not None else "")
        segment = self.next_segment()
        if segment is not None:
            self.fed.append(segment)
            return _for_pyx12(segment) + self._terminator
        if self._tail:
            self.fed.append(None)
            return self._tail.pop(0) + self._terminator
        return None

    def next_segment(self) -> Segment | None:
        """The next segment of the transaction set, None after its SE (or when the next
        segment opens another envelope: the set has no SE)."""
        if self.ended:
            return None
        item = next(self._source, None)
        if item is None or isinstance(item, Unenveloped) or item.id in _ENVELOPE_IDS:
            if item is not None:
                self._source.push_back(item)
            self.ended = True
            return None
        if item.id == "SE":
            self.trailer_read = self.ended = True
        return item

    def rest(self) -> Iterator[Segment]:
        """The segments of the transaction set pyx12 did not read: those handed over and
        not yet paired, then the ones after them."""
        while self.fed:
            segment = self.fed.popleft()
            if segment is not None:
                yield segment
        while self._head:
            segment, _ = self._head.popleft()
            if segment is not None:
                yield segment
        while (segment := self.next_segment()) is not None:
            yield segment


def _for_pyx12(segment: Segment) -> str:
    """A segment as pyx12 reads it: a guide it has no map for named as the one it reads
    with."""
    if segment.id == "ST" and segment.element(3) in READ_WITH:
        return segment.with_element(3, READ_WITH[segment.element(3)])
    return segment.text


# --- reading -------------------------------------------------------------------------------


class InterchangeReader:
    """Reads the claims of the X12 interchanges in one input.

    `claims()` yields one `AdaptedClaim` per CLM, in file order (and one dead letter for text
    that holds no claim the stage can find); afterwards `notes` holds the problems of the
    input as a whole (interchange and group trailers, segments outside any interchange).
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._source = SegmentReader(stream)
        self.notes: list[str] = []
        self._loops = _Loops()
        self._interchange: _Envelope | None = None
        self._group: _Envelope | None = None
        self._transaction = _Envelope()
        self._header = _Context()
        self._levels: dict[str, _Level] = {}
        self._claim: _Draft | None = None
        self._drafts: list[_Draft] = []
        self._held = 0
        self._position = 0
        self._seen_interchanges: set[str] = set()
        self._stray: list[Segment] = []
        self._stray_size = 0
        self._hl_open: list[str] = []
        self._hl_count = 0
        self._institutional = False
        self._kept = False
        self._orphans: list[_Level] = []

    def claims(self) -> Iterator[AdaptedClaim]:
        for item in self._source:
            if isinstance(item, Unenveloped):
                yield from self._flush_stray()
                yield _unenveloped(item)
            elif item.id == "ST" and self._group is not None:
                yield from self._flush_stray()
                yield from self._transaction_set(item)
            elif item.id in ("ISA", "GS", "GE", "IEA"):
                yield from self._flush_stray()
                yield from self._envelope(item)
            else:
                self._keep_stray(item)
        yield from self._flush_stray()
        yield from self._close_interchange(None)

    # --- envelopes

    def _envelope(self, segment: Segment) -> Iterator[AdaptedClaim]:
        if segment.id == "ISA":
            yield from self._close_interchange(None)
            self._open_interchange(segment)
        elif self._interchange is None:
            self._keep_stray(segment)
        elif segment.id == "GS":
            self._close_group(None)
            self._open_group(segment)
        elif segment.id == "GE":
            if self._group is None:
                self._keep_stray(segment)
            self._close_group(segment)
        else:
            yield from self._close_interchange(segment)

    def _open_interchange(self, segment: Segment) -> None:
        header = read_isa(segment)
        control = printable(header.elements[12].strip())
        interchange = _Envelope(
            control_number=control, detail=printable(header.elements[5].strip()) or None
        )
        interchange.header = header
        interchange.add(segment)
        if header.faults:
            interchange.fail(
                Problem(
                    ("ISA_LOOP", "ISA", 1),
                    f"ISA segment (line {segment.number}): {'; '.join(header.faults)}: the ISA "
                    "is fixed-length, and its receiver finds the delimiters by position",
                    "x12_isa_not_fixed_width",
                )
            )
        self._duplicate(self._seen_interchanges, control, interchange, "ISA13", segment)
        self._interchange, self._group, self._position = interchange, None, 0
        self._transaction = _Envelope()

    def _open_group(self, segment: Segment) -> None:
        interchange = _opened(self._interchange, "interchange")
        interchange.count += 1
        control = printable(segment.element(6))
        group = _Envelope(control_number=control, detail=printable(segment.element(8)) or None)
        group.fields = segment.elements()
        group.add(segment)
        self._duplicate(interchange.seen, control, group, "GS06", segment)
        self._group = group

    def _duplicate(
        self, seen: set[str], control: str, envelope: _Envelope, element: str, segment: Segment
    ) -> None:
        if control in seen:
            envelope.fail(
                Problem(
                    (segment.id, segment.number, element),
                    f"{segment.id} segment (line {segment.number}): control number {control} "
                    f"({element}) is used twice",
                    "x12_duplicate_control_number",
                )
            )
        elif len(seen) < 100_000:  # bounded: past it, duplicates are not looked for
            seen.add(control)

    def _close_group(self, trailer: Segment | None) -> None:
        group = self._group
        if group is None:
            return
        self._group = None
        if trailer is None:
            self._note_input(f"group {group.control_number} has no GE trailer")
            return
        count, control = trailer.element(1), trailer.element(2)
        if count != str(group.count):
            self._note_input(
                f"GE segment (line {trailer.number}): GE01 says {count} transaction sets, "
                f"group {group.control_number} has {group.count}"
            )
        if control != group.control_number:
            self._note_input(
                f"GE segment (line {trailer.number}): GE02 {control} is not the group's "
                f"control number {group.control_number}"
            )

    def _close_interchange(self, trailer: Segment | None) -> Iterator[AdaptedClaim]:
        interchange = self._interchange
        if interchange is None:
            if trailer is not None:
                self._keep_stray(trailer)
            return
        self._close_group(None)
        if trailer is None:
            self._note_input(f"interchange {interchange.control_number} has no IEA trailer")
        else:
            self._check_iea(trailer, interchange)
        if not interchange.released:
            yield self._empty(interchange, "the interchange holds no transaction set with a claim")
        self._interchange = None

    def _check_iea(self, trailer: Segment, interchange: _Envelope) -> None:
        count, control = trailer.element(1), trailer.element(2)
        if count != str(interchange.count):
            self._note_input(
                f"IEA segment (line {trailer.number}): IEA01 says {count} groups, interchange "
                f"{interchange.control_number} has {interchange.count}"
            )
        if control.strip() != interchange.control_number:
            self._note_input(
                f"IEA segment (line {trailer.number}): IEA02 {control} is not the "
                f"interchange's control number {interchange.control_number}"
            )

    def _note_input(self, note: str) -> None:
        if len(self.notes) < MAX_PROBLEMS:
            self.notes.append(printable(note))

    # --- segments outside any transaction set

    def _keep_stray(self, segment: Segment) -> None:
        if self._stray_size < MAX_CONTEXT_CHARS:
            self._stray.append(segment)
            self._stray_size += len(segment.text)

    def _flush_stray(self) -> Iterator[AdaptedClaim]:
        stray, self._stray, self._stray_size = self._stray, [], 0
        if not stray:
            return
        first = stray[0]
        ids = [s.id for s in stray]
        where = f"{len(stray)} segments from line {first.number} ({first.id} first)"
        if "CLM" not in ids and "ST" not in ids:
            self._note_input(f"{where} are outside any transaction set and hold no claim")
            return
        yield AdaptedClaim(
            raw=_raw([s.sent() for s in stray]),
            origin=Origin(format="x12", claim_position=1),
            claim_id=None,
            line=first.number,
            problems=(
                Problem(
                    (first.id, first.number),
                    f"{where} are outside any interchange and functional group: a transaction "
                    f"set ({ids.count('CLM')} claims here) needs its ISA and GS envelope, "
                    "which give its sender, control numbers and guide",
                    "x12_no_envelope",
                ),
            ),
        )

    # --- a transaction set

    def _transaction_set(self, st: Segment) -> Iterator[AdaptedClaim]:
        group = _opened(self._group, "functional group")
        interchange = _opened(self._interchange, "interchange")
        group.count += 1
        transaction = _Envelope(
            control_number=printable(st.element(2)),
            detail=printable(st.element(3)) or group.detail,
        )
        self._transaction, self._header, self._levels = transaction, _Context(), {}
        self._claim, self._drafts, self._held = None, [], 0
        self._hl_open, self._hl_count = [], 0
        self._institutional = format_of(transaction.detail or "") == "x12-837i"
        self._duplicate(group.seen, transaction.control_number or "", transaction, "ST02", st)
        feed = _Feed(self._source, interchange, group, st, transaction.detail or "")
        if st.element(3) and group.detail and st.element(3) != group.detail:
            transaction.fail(
                Problem(
                    ("ST_LOOP", "ST", 1, "ST03"),
                    printable(
                        f"ST segment (line {st.number}): ST03 {st.element(3)} is not its group's "
                        f"guide (GS08 {group.detail}): which guide the claims follow cannot be told"
                    ),
                    "x12_guide_mismatch",
                )
            )
        reason = self._not_validated(transaction.detail or "")
        if reason is None:
            yield from self._validated(feed)
        else:
            transaction.fail(reason)
            for segment in feed.rest():
                yield from self._unvalidated(segment)
        if not feed.trailer_read:
            transaction.fail(
                Problem(
                    ("ST_LOOP", "SE"),
                    f"transaction set {transaction.control_number} has no SE trailer (the "
                    "input or its group ends first): its claims may be incomplete",
                    "x12_mandatory_segment_missing",
                )
            )
        yield from self._release()
        if not transaction.released:
            yield self._empty(transaction, "the transaction set holds no claim (CLM)")

    def _not_validated(self, guide: str) -> Problem | None:
        """Why pyx12 cannot validate the transaction set, or None."""
        header = _opened(_opened(self._interchange, "interchange").header, "ISA")
        group = _opened(self._group, "functional group")
        version = header.elements[11]
        if guide not in GUIDES:
            return _unsupported_guide(guide)
        mapped = READ_WITH.get(guide, guide)
        fic = group.fields[1] if len(group.fields) > 1 else ""
        if _map_index().get_filename(version, mapped, fic) is None:
            return Problem(
                ("ISA_LOOP", "ISA", 1, "ISA12"),
                f"the interchange's version (ISA12 {version}) and its group's guide (GS01 "
                f"{group.fields[1:2]}, GS08 {group.detail}) do not go together: a 5010 837 is sent "
                "in an interchange of version 00501 with GS01 HC",
                "x12_envelope_version",
            )
        return None

    def _validated(self, feed: _Feed) -> Iterator[AdaptedClaim]:
        collector = _Collector(self._loops)
        try:
            reader = pyx12.x12context.X12ContextReader(PARAMS, collector, cast(TextIO, feed))
            for node in reader.iter_segments():
                segment = feed.fed.popleft()
                raised = collector.take()
                if segment is not None:
                    yield from self._segment(node, segment, raised)
        except Exception as error:  # pyx12 failed: the set cannot be checked
            yield from self._crashed(error, feed)

    def _crashed(self, error: Exception, feed: _Feed) -> Iterator[AdaptedClaim]:
        at = next((s for s in feed.fed if s is not None), None)
        where = f"the {at.id} segment on line {at.number}" if at else "the end of the set"
        self._transaction.fail(
            Problem(
                ("ST_LOOP", *((at.id, at.number) if at else ())),
                printable(
                    f"pyx12 failed on {where} ({type(error).__name__}: {error}): the "
                    f"transaction set {self._transaction.control_number} cannot be checked "
                    "against its guide, so none of its claims is decided"
                ),
                "x12_unreadable",
            )
        )
        for segment in feed.rest():
            yield from self._unvalidated(segment)

    def _segment(
        self, node: Any, segment: Segment, raised: list[_Raised]
    ) -> Iterator[AdaptedClaim]:
        self._kept = False
        try:
            self._read_segment(node, segment, raised)
        except Exception as error:  # the stage's own bug: fail the claim being read
            if not self._kept:
                self._keep(self._innermost(), segment)
            self._innermost().fail(
                Problem(
                    (segment.id, segment.number),
                    f"the stage failed reading the {segment.id} segment on line "
                    f"{segment.number} ({type(error).__name__}); the claim is kept whole "
                    "and can be replayed once the stage is fixed",
                    "x12_reader_error",
                ),
                "internal_error",
            )
        yield from self._release_held()

    def _read_segment(self, node: Any, segment: Segment, raised: list[_Raised]) -> None:
        map_node = node.x12_map_node
        known = map_node is not None and map_node.id == segment.id
        if segment.id == "SE":
            raised = [_at_trailer(r, node) for r in raised]
        for problem in (r for r in raised if r.missing):  # before this segment moves the loops
            self._judge(problem, None, self._context_of(problem.loops), segment.number)
        context, loops = self._place(segment, map_node if known else None)
        self._keep(context, segment)
        self._kept = True
        if isinstance(context, _Draft) and loops:
            _read_claim_segment(context, node.seg_data, segment, loops, node.seg_count)
        elif isinstance(context, _Level) and loops:
            _read_level_segment(context, node.seg_data, segment.id, loops)
        if segment.escaped:  # first: pyx12's complaints about those characters follow from it
            self._not_utf8(segment, context, loops, node.seg_count)
        for problem in (r for r in raised if not r.missing):
            self._attribute(problem, segment, context)
        if segment.id == "HL":
            self._hierarchy(segment, context, node.seg_count)

    def _unvalidated(self, segment: Segment) -> Iterator[AdaptedClaim]:
        """A segment of a transaction set pyx12 does not read: only the claims' structure."""
        if segment.id == "HL":
            context: _Context = self._open_level(_HL_LEVELS.get(segment.element(3), "2000C"))
        elif segment.id == "CLM":
            draft = self._open_claim(segment)
            draft.claim_id = printable(segment.element(1)) or None
            context = draft
        elif segment.id in ("ST", "SE"):
            self._close_claim()
            context = self._transaction
        else:
            context = self._innermost()
        self._keep(context, segment)
        yield from self._release_held()

    def _hierarchy(self, segment: Segment, level: _Context, position: int) -> None:
        """HL02 must name an HL above it that is still open (the hierarchy the stage reads);
        HL01 numbers the HL segments 1, 2, 3... (a note when it does not: the hierarchy
        does not depend on it)."""
        number, parent = segment.element(1), segment.element(2)
        self._hl_count += 1
        where = f"HL segment at position {position} (line {segment.number})"
        if number != str(self._hl_count):
            level.note(
                OriginNote(
                    message=printable(
                        f"{where}: HL01 is {number}, where the guide numbers the HL segments of "
                        f"a transaction set 1, 2, 3... (this is number {self._hl_count})"
                    ),
                    type="x12_hl_numbering",
                    segment="HL",
                    position=position,
                    element="HL01",
                )
            )
        if not parent:
            self._hl_open = []
        elif parent in self._hl_open:
            del self._hl_open[self._hl_open.index(parent) + 1 :]
        else:
            level.fail(
                Problem(
                    ("HL", position, "HL02"),
                    printable(
                        f"{where}: HL02 is {parent}, which is not the HL01 of an HL above it: "
                        "whose claims these are cannot be told"
                    ),
                    "x12_hl_parent",
                )
            )
        self._hl_open.append(number)

    def _keep(self, context: _Context, segment: Segment) -> None:
        kept = context.add(segment)
        if isinstance(context, _Draft):
            self._held += kept
        if segment.overlong:
            context.fail(
                Problem(
                    (segment.id, segment.number),
                    f"the {segment.id} segment on line {segment.number} has no terminator in "
                    f"its first {MAX_SEGMENT_CHARS:,} characters: it is cut there, and the "
                    "rest up to the next terminator is skipped",
                    "x12_segment_too_long",
                )
            )

    def _attribute(self, raised: _Raised, segment: Segment, context: _Context) -> None:
        if raised.code in ("HL1", "HL2"):
            return  # pyx12 checks HL02 against its own count, not HL01: see _hierarchy
        if raised.scope == "isa" and self._interchange is not None:
            self._interchange.fail(_problem(raised, segment.number))
        elif raised.scope == "gs" and self._group is not None:
            self._group.fail(_problem(raised, segment.number))
        elif raised.scope == "st":
            self._transaction.fail(_problem(raised, segment.number))
        else:
            self._judge(raised, segment, context, segment.number)

    def _judge(
        self, raised: _Raised, segment: Segment | None, context: _Context, line: int
    ) -> None:
        """A problem in what the stage reads fails the claims in `context`; any other is a
        note they carry."""
        if reads(raised, segment, self._institutional):
            context.fail(_problem(raised, line))
        else:
            context.note(_note(raised, line))

    def _not_utf8(
        self, segment: Segment, context: _Context, loops: tuple[str, ...], position: int
    ) -> None:
        raised = _Raised(
            "seg",
            "not_utf8",
            "holds bytes that are not UTF-8",
            None,
            None,
            loops,
            segment.id,
            position,
            missing=False,
        )
        if reads(raised, segment, self._institutional):
            context.fail(_problem(raised, segment.number), "not_utf8")
        else:
            context.note(_note(raised, segment.number))

    def _context_of(self, loops: tuple[str, ...]) -> _Context:
        """The open loop instance a location belongs to."""
        if _CLAIM_LOOP in loops and self._claim is not None:
            return self._claim
        for level in reversed(_LEVELS):
            if level in loops and level in self._levels:
                return self._levels[level]
        if "HEADER" in loops or "DETAIL" in loops:
            return self._header
        return self._transaction

    def _innermost(self) -> _Context:
        if self._claim is not None:
            return self._claim
        for level in reversed(_LEVELS):
            if level in self._levels:
                return self._levels[level]
        return self._header

    def _place(self, segment: Segment, map_node: Any) -> tuple[_Context, tuple[str, ...]]:
        """Move through the loops as this segment opens or closes them; the loop instance it
        belongs to, and its loops in the guide's map (none when the guide does not place it:
        it is not read). Such a segment still opens its level (HL) or claim (CLM), so that
        each claim is one output."""
        if segment.id in ("ST", "SE"):
            self._close_claim()
            return self._transaction, ()
        if map_node is None:
            if segment.id == "HL":
                return self._open_level(_HL_LEVELS.get(segment.element(3), "2000C")), ()
            if segment.id == "CLM":
                return self._open_claim(segment), ()
            return self._innermost(), ()
        loops = self._loops(map_node)
        if segment.id == "HL":
            return self._open_level(loops[-1]), loops
        if segment.id == "CLM":
            self._open_claim(segment)
        return self._context_of(loops), loops

    def _open_level(self, loop: str) -> _Level:
        self._close_claim()
        depth = _LEVELS.index(loop) if loop in _LEVELS else len(_LEVELS) - 1
        for deeper in _LEVELS[depth:]:
            self._closed_level(self._levels.pop(deeper, None))
        level = _Level(loop=loop)
        self._levels[loop] = level
        return level

    def _open_claim(self, segment: Segment) -> _Draft:
        self._close_claim()
        self._position += 1
        chain = tuple(self._levels[level] for level in _LEVELS if level in self._levels)
        for level in chain:
            level.claims += 1
        self._claim = _Draft(position=self._position, line=segment.number, chain=chain)
        return self._claim

    def _closed_level(self, level: _Level | None) -> None:
        """A loop closed with no claim under it: when something in it was wrong (a claim's
        segments without their CLM, say), it becomes a dead letter of its own."""
        if level is not None and not level.claims and level.problems:
            self._orphans.append(level)

    def _close_claim(self) -> None:
        if self._claim is not None:
            self._drafts.append(self._claim)
            self._claim = None

    # --- releasing claims

    def _release_held(self) -> Iterator[AdaptedClaim]:
        """Release the claims held so far when the transaction set holds too many: memory
        stays bounded, and a problem found at its SE no longer fails them."""
        if len(self._drafts) < MAX_HELD_CLAIMS and self._held < MAX_HELD_CHARS:
            return
        early = OriginNote(
            message=f"released before the SE of transaction set "
            f"{self._transaction.control_number}, which holds more than {MAX_HELD_CLAIMS:,} "
            "claims or 64 MiB: a problem of its trailer does not fail this claim",
            type="x12_released_early",
        )
        for draft in self._drafts:
            draft.note(early)
        yield from self._release_drafts()

    def _release(self) -> Iterator[AdaptedClaim]:
        """The claims of the transaction set just closed, with every problem known now."""
        self._close_claim()
        for level in self._levels.values():
            self._closed_level(level)
        yield from self._release_drafts()

    def _release_drafts(self) -> Iterator[AdaptedClaim]:
        drafts, self._drafts, self._held = self._drafts, [], 0
        for draft in drafts:
            yield self._adapted(draft)
        orphans, self._orphans = self._orphans, []
        for level in orphans:
            yield self._empty(level, f"loop {level.loop} holds no claim (CLM)")

    def _envelopes(self) -> list[_Context]:
        interchange = self._interchange or _Envelope()
        group = self._group or _Envelope()
        return [interchange, group, self._transaction, self._header]

    def _origin(self, position: int, claim_id: str | None, notes: list[OriginNote]) -> Origin:
        interchange = self._interchange or _Envelope()
        group = self._group or _Envelope()
        guide = self._transaction.detail or group.detail or ""
        if guide in READ_WITH:
            notes = [_read_with(guide), *notes]
        return Origin(
            format=format_of(guide),
            claim_position=position,
            submitter_claim_id=claim_id,
            interchange_sender_id=interchange.detail,
            interchange_control_number=interchange.control_number,
            group_control_number=group.control_number,
            transaction_set_control_number=self._transaction.control_number,
            implementation_guide=guide or None,
            notes=capped_notes(notes),
        )

    def _adapted(self, draft: _Draft) -> AdaptedClaim:
        shared = self._envelopes()
        # The claim's own problems first: the most specific is the dead letter's message.
        contexts = (draft, *reversed(draft.chain), *reversed(shared))
        notes = [note for context in contexts for note in context.notes]
        dropped = sum(context.dropped for context in contexts)
        origin = self._origin(draft.position, draft.claim_id, notes + _dropped(dropped))
        raw = _raw(_claim_segments(shared, draft))
        claim = AdaptedClaim(raw=raw, origin=origin, claim_id=draft.claim_id, line=draft.line)
        self._count_released()
        problems = [p for context in contexts for p in context.problems]
        if problems:
            claim.problems = tuple(problems)
            claim.kind = next(
                (c.kind for c in contexts if c.kind != "contract_violation"), claim.kind
            )
            return claim
        facts, missing = _facts(draft, origin.format)
        if facts is None:
            claim.problems = tuple(missing)
            return claim
        claim.event, claim.places = encounter_event(facts, origin, raw), draft.places
        return claim

    def _count_released(self) -> None:
        self._transaction.released += 1
        if self._interchange is not None:
            self._interchange.released += 1

    def _empty(self, unit: _Context, what: str) -> AdaptedClaim:
        """One dead letter for an interchange, transaction set or loop in which no claim is
        found: never a silent nothing."""
        shared: list[_Context] = [unit] if unit is self._interchange else self._envelopes()
        inner: list[_Context] = [unit] if isinstance(unit, _Level) else list(self._levels.values())
        segments = _raw_order(shared, inner)
        problems = [p for context in (*inner, *shared) for p in context.problems]
        self._count_released()
        return AdaptedClaim(
            raw=_raw(segments),
            origin=self._origin(self._position + 1, None, []),
            claim_id=None,
            line=1,
            problems=(
                Problem(
                    (_unit_loop(unit, self._interchange),),
                    f"{what}: nothing in it can be read as a claim",
                    "x12_no_claim",
                ),
                *problems,
            ),
        )


def _dropped(count: int) -> list[OriginNote]:
    if not count:
        return []
    return [
        OriginNote(
            message=f"{count} more problems and notes of this claim's loops are not kept",
            type="x12_more_notes",
        )
    ]


def _read_with(guide: str) -> OriginNote:
    return OriginNote(
        message=f"{guide} read with pyx12's {READ_WITH[guide]} map: the segments the stage "
        "reads are the same in both",
        type="x12_guide_read_as",
        segment="ST",
        element="ST03",
    )


def _unenveloped(item: Unenveloped) -> AdaptedClaim:
    """Text before the first ISA, or an ISA that cannot be read: one dead letter."""
    claims = len(_CLM.findall(item.text))
    kept = f" (its first {len(item.text):,} characters are kept)" if item.dropped else ""
    if item.unreadable_isa:
        what = "an ISA segment whose sixteen elements cannot be found"
    elif item.text.startswith(("GS", "ST")):
        what = f"a transaction without an interchange envelope (no ISA before its {item.text[:2]})"
    else:
        what = "text that is not an X12 interchange (no ISA segment)"
    return AdaptedClaim(
        raw=item.text.encode("utf-8", "surrogateescape"),
        origin=Origin(format="x12", claim_position=1),
        claim_id=None,
        line=item.number,
        problems=(
            Problem(
                ("ISA_LOOP", "ISA"),
                f"{what}{kept}: an 837 starts with an ISA segment, which gives its "
                f"delimiters, sender and control number; the {claims} claims (CLM segments) "
                "in it cannot be read without one",
                "x12_no_envelope",
            ),
        ),
    )


def format_of(guide: str) -> OriginFormat:
    """837P or 837I from the implementation guide (ST03 or GS08); `x12` when neither."""
    if guide in GUIDES:
        return GUIDES[guide]
    if "X222" in guide or "X098" in guide:
        return "x12-837p"
    if "X223" in guide or "X096" in guide:
        return "x12-837i"
    return "x12"


def _raw(segments: list[str]) -> bytes:
    """A claim's input as sent (bytes that were not UTF-8 restored)."""
    return "".join(segments).encode("utf-8", "surrogateescape")


def _unit_loop(unit: _Context, interchange: _Envelope | None) -> str:
    if isinstance(unit, _Level):
        return unit.loop
    return "ISA_LOOP" if unit is interchange else "ST_LOOP"


def _raw_order(shared: list[_Context], inner: list[_Context]) -> list[str]:
    """Segments of the envelopes and loops around nothing: ISA, GS, ST, the header, the
    loops, SE."""
    if len(shared) == 1:
        return shared[0].segments[:1]
    interchange, group, transaction, header = shared
    segments = [*interchange.segments[:1], *group.segments[:1], *transaction.segments[:1]]
    segments += header.segments
    for level in inner:
        segments += level.segments
    return segments + transaction.segments[1:2]


def _claim_segments(shared: list[_Context], draft: _Draft) -> list[str]:
    """The claim's segments with the envelope, header and loops around it, in file order:
    ISA, GS, ST, the header, its billing provider, subscriber and patient loops, the claim,
    and SE when it has been read."""
    interchange, group, transaction, header = shared
    segments = [*interchange.segments[:1], *group.segments[:1], *transaction.segments[:1]]
    segments += header.segments
    for level in draft.chain:
        segments += level.segments
    return segments + draft.segments + transaction.segments[1:2]


def _unsupported_guide(guide: str) -> Problem:
    return Problem(
        loc=("ST_LOOP", "ST", 1, "ST03"),
        message=f"implementation guide {printable(guide) or '(none)'} is not read by the "
        f"stage: it reads 837P {' and '.join(g for g, f in GUIDES.items() if f == 'x12-837p')}"
        f", 837I {' and '.join(g for g, f in GUIDES.items() if f == 'x12-837i')}",
        type="x12_unsupported_guide",
    )


# --- the elements the rules need --------------------------------------------------------------


def _read_level_segment(level: _Level, data: Any, segment_id: str, loops: tuple[str, ...]) -> None:
    if segment_id == "DMG":
        level.birth_date = _date(data.get_value("DMG02"))
        level.sex = _sex(data.get_value("DMG03"))
    elif segment_id == "NM1" and loops[-1] == "2010BB":
        level.payer_id = printable(data.get_value("NM109") or data.get_value("NM103") or "")


def _read_claim_segment(
    draft: _Draft, data: Any, segment: Segment, loops: tuple[str, ...], position: int
) -> None:
    segment_id = segment.id
    where = f"{segment_id} segment at position {position} (line {segment.number}), loop {loops[-1]}"
    if segment_id == "CLM":
        draft.claim_id = printable(data.get_value("CLM01") or "") or None
        draft.facility = data.get_value("CLM05-1")
        draft.frequency = data.get_value("CLM05-3")
        draft.places[("claim_id",)] = f"CLM01 in the {where}"
    elif segment_id == "HI":
        _read_diagnoses(draft, data, where)
    elif segment_id == "DTP":
        _read_date(draft, data, loops[-1], where)
    elif segment_id == "LX":
        draft.current_line = _int(data.get_value("LX01"))
    elif segment_id in ("SV1", "SV2"):
        _read_service(draft, data, segment_id, where)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _read_diagnoses(draft: _Draft, data: Any, where: str) -> None:
    for index in range(1, min(len(data), 12) + 1):
        reference = f"HI{index:02d}"
        qualifier = data.get_value(f"{reference}-1")
        code = data.get_value(f"{reference}-2")
        if not code or qualifier not in PRINCIPAL_QUALIFIERS | OTHER_QUALIFIERS:
            continue
        draft.places[("diagnoses", len(draft.diagnoses))] = (
            f"{reference} ({qualifier}) in the {where}"
        )
        draft.diagnoses.append(code)


def _read_date(draft: _Draft, data: Any, loop: str, where: str) -> None:
    qualifier, value = data.get_value("DTP01"), data.get_value("DTP03")
    if qualifier == "472" and loop == "2400":
        date = _date(value)
        if date is not None:
            draft.service_dates.append(date)
            draft.places.setdefault(("date_of_service",), f"DTP03 (472) in the {where}")
    elif qualifier == "434":
        draft.statement = _statement(value)
        draft.places[("discharge_date",)] = f"DTP03 (434, statement dates) in the {where}"
        draft.places.setdefault(("date_of_service",), f"DTP03 (434) in the {where}")
    elif qualifier == "435":
        draft.admission = _date(value)
        draft.places[("date_of_service",)] = f"DTP03 (435, admission) in the {where}"


def _read_service(draft: _Draft, data: Any, segment_id: str, where: str) -> None:
    """An 837P SV1 or 837I SV2 line with a CPT/HCPCS code (qualifier HC). A revenue-code
    line without one, or a line coded otherwise (HIPPS, HIEC, ABC codes), is not a
    procedure the rules read. An 837P line billed in minutes (SV103 MJ, anesthesia) is one
    service of that many minutes; any other unit (UN, and the 837I's days, DA) counts
    units."""
    product = "SV101" if segment_id == "SV1" else "SV202"
    if data.get_value(f"{product}-1") != "HC" or not data.get_value(f"{product}-2"):
        return
    unit, quantity_element = ("SV103", "SV104") if segment_id == "SV1" else ("SV204", "SV205")
    quantity = data.get_value(quantity_element)
    minutes = data.get_value(unit) == "MJ"
    counted = whole_units(quantity)
    line_number = draft.current_line or len(draft.service_lines) + 1
    draft.places[("procedures", len(draft.service_lines))] = f"{product} in the {where}"
    if counted is None:
        what = "minutes" if minutes else "units"
        draft.fail(
            Problem(
                loc=("2400", segment_id, line_number, quantity_element),
                message=f"{where}: service line {line_number} has {quantity} {what}; the "
                f"stage reads whole {what} of 1 or more",
                type="x12_units_not_whole",
            )
        )
        return
    modifiers = tuple(m for n in range(3, 7) if (m := data.get_value(f"{product}-{n}")))
    pointers = (
        tuple(p for n in range(1, 5) if (p := _int(data.get_value(f"SV107-{n}"))) is not None)
        if segment_id == "SV1"
        else None
    )
    draft.service_lines.append(
        ServiceLine(
            line=line_number,
            code=data.get_value(f"{product}-2"),
            units=1 if minutes else counted,
            modifiers=modifiers,
            pointers=pointers or None,
            minutes=counted if minutes else None,
        )
    )


def _setting(draft: _Draft, format: OriginFormat) -> Setting:
    """837P is professional; 837I by type of bill (CLM05-1, facility type and bill
    classification): inpatient for the inpatient classifications (x1, Part A) and swing beds
    (x8) of hospitals, SNFs and other inpatient facilities (1x, 2x, 4x, 6x), outpatient
    otherwise (13x outpatient, 12x and 14x Part B, clinics 7x, special facilities 8x)."""
    if format == "x12-837p":
        return "professional"
    facility = draft.facility or ""
    inpatient = len(facility) == 2 and facility[0] in "1246" and facility[1] in "18"
    return "inpatient" if inpatient else "outpatient"


def _facts(draft: _Draft, format: OriginFormat) -> tuple[ClaimFacts | None, list[Problem]]:
    setting = _setting(draft, format)
    statement = draft.statement
    if setting == "inpatient":
        start = draft.admission or (statement[0] if statement else None)
        # Interim bills (frequency 2, 3) end before the discharge.
        discharge = statement[1] if statement and draft.frequency not in ("2", "3") else None
    else:
        dates = draft.service_dates or ([statement[0]] if statement else [])
        start, discharge = (min(dates) if dates else None), None
    missing: list[Problem] = []
    if not draft.diagnoses:
        missing.append(_missing("HI", "a diagnosis code (HI ABK/ABF or BK/BF)", draft))
    if start is None:
        needed = "DTP*472 service dates" if format == "x12-837p" else "DTP*435/DTP*434 dates"
        missing.append(_missing("DTP", f"a date of service ({needed})", draft))
    if missing or start is None:
        return None, missing
    level = draft.chain[-1] if draft.chain else _Level()
    subscriber = next((lv for lv in draft.chain if lv.loop == "2000B"), level)
    return (
        ClaimFacts(
            claim_id=draft.claim_id or "",
            setting=setting,
            date_of_service=start,
            discharge_date=discharge,
            diagnoses=draft.diagnoses,
            procedures=draft.service_lines,
            birth_date=level.birth_date,
            sex=level.sex,
            payer_id=subscriber.payer_id,
        ),
        [],
    )


def _missing(segment_id: str, what: str, draft: _Draft) -> Problem:
    return Problem(
        loc=(_CLAIM_LOOP, segment_id),
        message=f"claim {draft.claim_id} (CLM segment on line {draft.line}) has no {what}: "
        "the rules cannot judge it",
        type="x12_missing_claim_data",
    )
