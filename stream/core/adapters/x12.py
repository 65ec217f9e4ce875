"""ASC X12 837 claims (005010X222A1 professional, 005010X223A2 institutional) into events.

pyx12 reads the interchange and validates every segment against the implementation guide's
map: segment and loop placement, mandatory segments, element lengths, codes and dates, and
the envelope's counts. This module follows the loops pyx12 finds, reads the elements the
rules need from each claim, and attributes each problem pyx12 reports to the claims it
concerns:

- a problem inside a claim's loops (2300, 2400 and their children) fails that claim only;
- a problem in a billing provider, subscriber or patient loop (2000A/B/C with their 2010
  loops) fails the claims beneath it;
- a problem in the transaction's header or trailer (ST, BHT, 1000A/B, SE) fails every claim
  of the transaction set, since its content can no longer be trusted;
- a problem in the interchange or group trailer (IEA, GE counts and control numbers) fails
  no claim (each claim's transaction set was checked whole) and is reported as a note.

Claims are therefore released at the end of their transaction set (SE), so memory holds one
transaction set (the guide recommends at most 5,000 claims in one) at a time.

Elements read: ISA06, ISA13, GS06, GS08, ST02, ST03, NM1*PR NM109 (2010BB), DMG02
and DMG03 (2010BA, or 2010CA for a patient who is not the subscriber), CLM01, CLM05, DTP*434
and DTP*435 (837I), HI ABK/BK and ABF/BF, LX01, SV1 (HC code, modifiers, SV104 units, SV107
pointers), SV2 (SV202 HC code, modifiers, SV205 units) and DTP*472. Everything else is
validated by pyx12 and kept in the claim's raw text, but not read.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

import pyx12.error_handler
import pyx12.errors
import pyx12.params
import pyx12.x12context

from stream.core.adapters.formats import (
    AdaptedClaim,
    ClaimFacts,
    Problem,
    ServiceLine,
    encounter_event,
    whole_units,
)
from stream.core.contracts import Origin, OriginFormat, Setting, Sex

PROFESSIONAL_GUIDE = "005010X222A1"
INSTITUTIONAL_GUIDE = "005010X223A2"
GUIDES: dict[str, OriginFormat] = {
    PROFESSIONAL_GUIDE: "x12-837p",
    INSTITUTIONAL_GUIDE: "x12-837i",
}
"""The implementation guides read, with pyx12's maps for them."""

PRINCIPAL_QUALIFIERS = frozenset({"ABK", "BK"})
OTHER_QUALIFIERS = frozenset({"ABF", "BF"})
"""HI qualifiers of the diagnosis sequence: ICD-10-CM (ABK, ABF) and ICD-9-CM (BK, BF).

An ICD-9-CM code is read like any other code and fails MET-001 (not ICD-10-CM), as a
mistyped code does. Admitting diagnosis (ABJ), patient's reason for visit (APR), external
cause (ABN), procedure, occurrence, value and condition codes are not in the sequence the
rules judge: the stage does not read them."""

_SEGMENT_ERRORS = {
    "1": "unrecognized_segment",
    "2": "unexpected_segment",
    "3": "mandatory_segment_missing",
    "4": "loop_over_maximum",
    "5": "segment_over_maximum_use",
    "6": "segment_not_in_transaction_set",
    "7": "segment_out_of_sequence",
    "8": "segment_has_element_errors",
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
    "isa": {
        "001": "control_number_mismatch",
        "021": "group_count_mismatch",
        "024": "unterminated_loop",
        "025": "duplicate_control_number",
    },
    "gs": {
        "3": "unterminated_loop",
        "4": "control_number_mismatch",
        "5": "transaction_count_mismatch",
        "6": "duplicate_control_number",
    },
    "st": {
        "2": "trailer_missing",
        "3": "control_number_mismatch",
        "4": "segment_count_mismatch",
        "23": "duplicate_control_number",
    },
}
_CLAIM_LOOP = "2300"
_LEVELS = ("2000A", "2000B", "2000C")
_TRAILERS = frozenset({"GE", "IEA"})
_CLOSERS = {
    "SE": ("ISA_LOOP", "GS_LOOP", "ST_LOOP"),
    "GE": ("ISA_LOOP", "GS_LOOP"),
    "IEA": ("ISA_LOOP",),
}


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
    line: int | None
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
        self._line: int | None = None
        self._missing = False

    def take(self) -> list[_Raised]:
        raised, self.raised = self.raised, []
        return raised

    # the cursor: which segment the following errors are about
    def add_isa_loop(self, seg: Any, src: Any) -> None:
        self._cursor(("ISA_LOOP",), seg, src.get_seg_count(), src.get_cur_line())

    def add_gs_loop(self, seg: Any, src: Any) -> None:
        self._cursor(("ISA_LOOP", "GS_LOOP"), seg, src.get_seg_count(), src.get_cur_line())

    def add_st_loop(self, seg: Any, src: Any) -> None:
        loops = ("ISA_LOOP", "GS_LOOP", "ST_LOOP")
        self._cursor(loops, seg, src.get_seg_count(), src.get_cur_line())

    def add_seg(self, map_node: Any, seg: Any, seg_count: int, cur_line: int, ls_id: Any) -> None:
        self._cursor(map_node, seg, seg_count, cur_line, map_node.id)

    def _cursor(
        self,
        place: tuple[str, ...] | Any,
        seg: Any,
        position: int | None,
        line: int | None,
        map_id: str | None = None,
    ) -> None:
        # The loops of a map node are worked out only when a problem is raised there:
        # pyx12 moves this cursor at every segment.
        self._place = place
        # pyx12 reports a missing segment or loop with a stand-in segment of no elements
        self._missing = seg is None or len(seg) == 0
        self._segment_id = seg.get_seg_id() if seg is not None else map_id
        self._position, self._line = position, line

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
                self._line,
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


def _at_trailer(raised: _Raised, segment_id: str, node: Any) -> _Raised:
    if raised.missing or raised.scope == "ele":
        return raised
    position = node.seg_count + 1 if segment_id == "SE" else None
    return replace(
        raised,
        loops=_CLOSERS[segment_id],
        segment_id=segment_id,
        position=position,
        line=node.cur_line_number,
    )


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


def _problem(raised: _Raised) -> Problem:
    loop = next((loop for loop in reversed(raised.loops) if loop[:1].isdigit()), None)
    loop = loop or (raised.loops[-1] if raised.loops else "ISA_LOOP")
    segment = raised.segment_id or "?"
    if raised.missing:
        where = f"loop {loop} (noticed at position {raised.position}, line {raised.line})"
    else:
        where = f"{segment} segment at position {raised.position} (line {raised.line}), loop {loop}"
    names = {"ele": _ELEMENT_ERRORS, "seg": _SEGMENT_ERRORS}.get(raised.scope)
    if names is None:
        kind = _ENVELOPE_ERRORS[raised.scope].get(raised.code, "envelope_error")
    else:
        kind = names.get(raised.code, f"{raised.scope}_error")
    loc: tuple[str | int, ...] = (loop, segment)
    if raised.position is not None and not raised.missing:
        loc += (raised.position,)
    if raised.element:
        loc += (raised.element,)
    return Problem(loc=loc, message=f"{where}: {raised.message}", type=f"x12_{kind}")


# --- the loops a claim sits in --------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    """A loop instance: its segments (text) and the problems found in it."""

    segments: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class _Envelope(_Context):
    """The interchange (ISA), group (GS) or transaction set (ST) a claim travels in."""

    control_number: str | None = None
    detail: str | None = None  # ISA06 sender, GS08 or ST03 guide


@dataclass(slots=True)
class _Level(_Context):
    """A billing provider (2000A), subscriber (2000B) or patient (2000C) loop."""

    loop: str = ""
    birth_date: dt.date | None = None
    sex: Sex | None = None
    payer_id: str | None = None


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


# --- reading -------------------------------------------------------------------------------


class InterchangeReader:
    """Reads the claims of the X12 interchanges in one input, validated by pyx12.

    `claims()` yields one `AdaptedClaim` per CLM, in file order; afterwards `notes` holds the
    interchange and group trailer problems, which fail no claim.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.notes: list[str] = []
        self._loops = _Loops()
        self._collector = _Collector(self._loops)
        self._interchange = _Envelope()
        self._group = _Envelope()
        self._transaction: _Envelope | None = None
        self._header = _Context()
        self._levels: dict[str, _Level] = {}
        self._claim: _Draft | None = None
        self._drafts: list[_Draft] = []
        self._position = 0
        self._last_line = 0

    def claims(self) -> Iterator[AdaptedClaim]:
        text = io.TextIOWrapper(self._stream, encoding="utf-8", newline="")
        try:
            reader = pyx12.x12context.X12ContextReader(pyx12.params.params(), self._collector, text)
            interchanges = 0
            for node in reader.iter_segments():
                if node.seg_data.get_seg_id() == "ISA":
                    interchanges += 1
                    if interchanges > 1:
                        # pyx12 4.0.0 keeps counting IEA segments across the interchanges
                        # of one file (and reports the second as over its maximum use)
                        # unless its counters are reset at each ISA, as it does at a GS.
                        reader._reset_counter_to_isa_counts()
                yield from self._segment(node)
        except (pyx12.errors.X12Error, pyx12.errors.EngineError, UnicodeDecodeError) as error:
            yield from self._unreadable(error)
            return
        finally:
            text.detach()
        if self._transaction is not None:
            self._transaction.problems.append(
                Problem(
                    loc=("ST_LOOP", "SE"),
                    message=f"the input ends inside transaction set {self._transaction.control_number}: "
                    "its SE trailer is missing, so its claims may be incomplete",
                    type="x12_mandatory_segment_missing",
                )
            )
            yield from self._release()

    def _segment(self, node: Any) -> Iterator[AdaptedClaim]:
        segment = node.seg_data
        segment_id = segment.get_seg_id()
        map_node = node.x12_map_node
        known = map_node is not None and map_node.id == segment_id
        raised = self._collector.take()
        if segment_id in _CLOSERS:
            # pyx12 checks a trailer before it moves its cursor there: put the location right
            raised = [_at_trailer(r, segment_id, node) for r in raised]
        for problem in (r for r in raised if r.missing):  # before this segment moves the loops
            self._context_of(problem.loops).problems.append(_problem(problem))
        position, line = node.seg_count, node.cur_line_number or self._last_line + 1
        self._last_line = line
        context = self._place(segment, segment_id, map_node if known else None, position, line)
        context.segments.append(segment.format())
        for problem in (r for r in raised if not r.missing):
            self._attribute(problem, segment_id, context)
        if segment_id == "SE":
            yield from self._release()

    def _attribute(self, raised: _Raised, segment_id: str, context: _Context) -> None:
        problem = _problem(raised)
        if segment_id in _TRAILERS:
            self.notes.append(problem.message)
        elif raised.scope == "isa":
            self._interchange.problems.append(problem)
        elif raised.scope == "gs":
            self._group.problems.append(problem)
        elif raised.scope == "st" and self._transaction is not None:
            self._transaction.problems.append(problem)
        else:
            context.problems.append(problem)

    def _context_of(self, loops: tuple[str, ...]) -> _Context:
        """The open loop instance a location belongs to."""
        if _CLAIM_LOOP in loops and self._claim is not None:
            return self._claim
        for level in reversed(_LEVELS):
            if level in loops and level in self._levels:
                return self._levels[level]
        if "HEADER" in loops or "DETAIL" in loops:
            return self._header
        if "ST_LOOP" in loops and self._transaction is not None:
            return self._transaction
        return self._group if "GS_LOOP" in loops else self._interchange

    def _innermost(self) -> _Context:
        if self._claim is not None:
            return self._claim
        for level in reversed(_LEVELS):
            if level in self._levels:
                return self._levels[level]
        return self._transaction or self._group

    def _place(
        self, segment: Any, segment_id: str, map_node: Any, position: int, line: int
    ) -> _Context:
        """Move through the loops as this segment opens or closes them; read what the rules
        need from it; return the loop instance it belongs to."""
        if map_node is None:  # a segment the guide does not know where it is
            return self._innermost()
        if segment_id in ("ISA", "GS", "ST", "SE", "GE", "IEA"):
            return self._envelope(segment, segment_id)
        loops = self._loops(map_node)
        if segment_id == "HL":
            return self._open_level(loops[-1])
        if segment_id == "CLM":
            self._open_claim(position, line)
        context = self._context_of(loops)
        if isinstance(context, _Draft):
            _read_claim_segment(context, segment, segment_id, loops, position, line)
        elif isinstance(context, _Level):
            _read_level_segment(context, segment, segment_id, loops)
        return context

    def _envelope(self, segment: Any, segment_id: str) -> _Context:
        if segment_id == "ISA":
            self._interchange = _Envelope(
                control_number=segment.get_value("ISA13"),
                detail=(segment.get_value("ISA06") or "").strip() or None,
            )
            self._position = 0
            return self._interchange
        if segment_id == "GS":
            self._group = _Envelope(
                control_number=segment.get_value("GS06"), detail=segment.get_value("GS08")
            )
            return self._group
        if segment_id == "ST":
            self._transaction = _Envelope(
                control_number=segment.get_value("ST02"),
                detail=segment.get_value("ST03") or self._group.detail,
            )
            self._header, self._levels, self._claim = _Context(), {}, None
            return self._transaction
        if segment_id == "SE" and self._transaction is not None:
            self._close_claim()
            return self._transaction
        return self._group if segment_id == "GE" else self._interchange

    def _open_level(self, loop: str) -> _Level:
        self._close_claim()
        depth = _LEVELS.index(loop) if loop in _LEVELS else len(_LEVELS) - 1
        for deeper in _LEVELS[depth:]:
            self._levels.pop(deeper, None)
        level = _Level(loop=loop)
        self._levels[loop] = level
        return level

    def _open_claim(self, position: int, line: int) -> None:
        self._close_claim()
        self._position += 1
        chain = tuple(self._levels[level] for level in _LEVELS if level in self._levels)
        self._claim = _Draft(position=self._position, line=line, chain=chain)

    def _close_claim(self) -> None:
        if self._claim is not None:
            self._drafts.append(self._claim)
            self._claim = None

    def _release(self) -> Iterator[AdaptedClaim]:
        """The claims of the transaction set just closed, with every problem known now."""
        self._close_claim()
        transaction = self._transaction or _Envelope()
        shared: list[_Context] = [self._interchange, self._group, transaction, self._header]
        for draft in self._drafts:
            yield self._adapted(draft, shared)
        self._drafts, self._transaction = [], None

    def _adapted(self, draft: _Draft, shared: list[_Context]) -> AdaptedClaim:
        transaction = self._transaction or _Envelope()
        guide = transaction.detail or ""
        format = format_of(guide)
        origin = Origin(
            format=format,
            claim_position=draft.position,
            submitter_claim_id=draft.claim_id,
            interchange_sender_id=self._interchange.detail,
            interchange_control_number=self._interchange.control_number,
            group_control_number=self._group.control_number,
            transaction_set_control_number=transaction.control_number,
            implementation_guide=guide or None,
        )
        raw = "\n".join(_claim_segments(shared, draft)).encode()
        claim = AdaptedClaim(raw=raw, origin=origin, claim_id=draft.claim_id, line=draft.line)
        # The claim's own problems first: the most specific is the dead letter's message.
        contexts = (draft, *reversed(draft.chain), *reversed(shared))
        problems = [p for context in contexts for p in context.problems]
        if guide not in GUIDES:
            problems.insert(0, _unsupported_guide(guide))
        if problems:
            claim.problems = tuple(problems)
            return claim
        facts, missing = _facts(draft, format)
        if facts is None:
            claim.problems = tuple(missing)
            return claim
        claim.event, claim.places = encounter_event(facts, origin, raw), draft.places
        return claim

    def _unreadable(self, error: Exception) -> Iterator[AdaptedClaim]:
        """pyx12 cannot go on. The claims of the transaction sets read whole have been
        released; the input cannot be split into claims past this point, so it becomes one
        dead letter holding all of it (re-sent once fixed, the claims already decided get
        the same event IDs, and consumers drop them as duplicates)."""
        self._stream.seek(0)
        raw = self._stream.read()
        if isinstance(error, UnicodeDecodeError):
            kind, message = "x12_not_utf8", f"byte 0x{error.object[error.start]:02x} is not UTF-8"
        else:
            kind, message = "x12_unreadable", str(error)
        where = f"after segment {self._last_line}" if self._last_line else "at its start"
        yield AdaptedClaim(
            raw=raw,
            origin=Origin(
                format=format_of(self._group.detail or ""),
                claim_position=self._position + 1,
                interchange_sender_id=self._interchange.detail,
                interchange_control_number=self._interchange.control_number,
                group_control_number=self._group.control_number,
            ),
            claim_id=None,
            line=self._last_line + 1,
            kind="not_utf8" if isinstance(error, UnicodeDecodeError) else "contract_violation",
            problems=(
                Problem(
                    loc=("ISA_LOOP",),
                    message=f"pyx12 cannot read the interchange {where}: {message}; the "
                    f"{self._position} claims before it were read, the rest are in this "
                    "dead letter with the whole input",
                    type=kind,
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
        message=f"implementation guide {guide or '(none)'} is not read by the stage: it reads "
        f"837P {PROFESSIONAL_GUIDE} and 837I {INSTITUTIONAL_GUIDE}",
        type="x12_unsupported_guide",
    )


# --- the elements the rules need --------------------------------------------------------------


def _read_level_segment(
    level: _Level, segment: Any, segment_id: str, loops: tuple[str, ...]
) -> None:
    if segment_id == "DMG":
        level.birth_date = _date(segment.get_value("DMG02"))
        level.sex = _sex(segment.get_value("DMG03"))
    elif segment_id == "NM1" and loops[-1] == "2010BB":
        level.payer_id = segment.get_value("NM109") or segment.get_value("NM103")


def _read_claim_segment(
    draft: _Draft, segment: Any, segment_id: str, loops: tuple[str, ...], position: int, line: int
) -> None:
    where = f"{segment_id} segment at position {position} (line {line}), loop {loops[-1]}"
    if segment_id == "CLM":
        draft.claim_id = segment.get_value("CLM01")
        draft.facility = segment.get_value("CLM05-1")
        draft.frequency = segment.get_value("CLM05-3")
        draft.places[("claim_id",)] = f"CLM01 in the {where}"
    elif segment_id == "HI":
        _read_diagnoses(draft, segment, where)
    elif segment_id == "DTP":
        _read_date(draft, segment, loops[-1], where)
    elif segment_id == "LX":
        draft.current_line = _int(segment.get_value("LX01"))
    elif segment_id in ("SV1", "SV2"):
        _read_service(draft, segment, segment_id, where)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _read_diagnoses(draft: _Draft, segment: Any, where: str) -> None:
    for index in range(1, min(len(segment), 12) + 1):
        reference = f"HI{index:02d}"
        qualifier = segment.get_value(f"{reference}-1")
        code = segment.get_value(f"{reference}-2")
        if not code or qualifier not in PRINCIPAL_QUALIFIERS | OTHER_QUALIFIERS:
            continue
        draft.places[("diagnoses", len(draft.diagnoses))] = (
            f"{reference} ({qualifier}) in the {where}"
        )
        draft.diagnoses.append(code)


def _read_date(draft: _Draft, segment: Any, loop: str, where: str) -> None:
    qualifier, value = segment.get_value("DTP01"), segment.get_value("DTP03")
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


def _read_service(draft: _Draft, segment: Any, segment_id: str, where: str) -> None:
    """An 837P SV1 or 837I SV2 line with a CPT/HCPCS code (qualifier HC). A revenue-code
    line without one, or a line coded otherwise (HIPPS, HIEC, ABC codes), is not a
    procedure the rules read."""
    product = "SV101" if segment_id == "SV1" else "SV202"
    if segment.get_value(f"{product}-1") != "HC" or not segment.get_value(f"{product}-2"):
        return
    quantity = segment.get_value("SV104" if segment_id == "SV1" else "SV205")
    units = whole_units(quantity)
    line_number = draft.current_line or len(draft.service_lines) + 1
    index = len(draft.service_lines)
    draft.places[("procedures", index)] = f"{product} in the {where}"
    if units is None:
        draft.problems.append(
            Problem(
                loc=("2400", segment_id, line_number, "SV104" if segment_id == "SV1" else "SV205"),
                message=f"{where}: service line {line_number} has {quantity} units; the stage "
                "reads whole units of 1 or more",
                type="x12_units_not_whole",
            )
        )
        return
    modifiers = tuple(m for n in range(3, 7) if (m := segment.get_value(f"{product}-{n}")))
    pointers = (
        tuple(p for n in range(1, 5) if (p := _int(segment.get_value(f"SV107-{n}"))) is not None)
        if segment_id == "SV1"
        else None
    )
    draft.service_lines.append(
        ServiceLine(
            line=line_number,
            code=segment.get_value(f"{product}-2"),
            units=units,
            modifiers=modifiers,
            pointers=pointers or None,
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
