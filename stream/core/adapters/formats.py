"""Claims as payers and hospitals send them, read into encounter events.

An adapter (`x12`, `fhir`) reads one claim of an 837 interchange or a FHIR resource into an
`AdaptedClaim`: the encounter event the claim maps to (JSON, with its `origin`), or the
problems that keep it from being one, and the claim's own part of the input, which a dead
letter keeps whole. `Decider.decide` then checks the event against the contract and runs
the rules exactly as on a native event, so that a claim gets the same decision whatever
format it came in.

`detect_format` tells the formats apart from the first line of an input file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

import orjson

from stream.core.contracts import (
    MAX_ORIGIN_NOTES,
    DeadLetterKind,
    Origin,
    OriginNote,
    Setting,
    Sex,
)

InputFormat = Literal["json-lines", "fhir-bundle-lines", "json-document", "x12"]
"""How an input file is read into records.

- `json-lines`: one record a line, each a native encounter event or a FHIR `Claim`.
- `fhir-bundle-lines`: one FHIR `Bundle` a line (a minified Bundle is one line); each
  Bundle is split into its claims.
- `json-document`: one JSON document over several lines (a pretty-printed Bundle or Claim).
- `x12`: ASC X12 interchanges (837P 005010X222A1/A2, 837I 005010X223A2/A3), split into
  claims; also a transaction set sent without its interchange envelope, which the X12 reader
  turns into one dead letter that says so.
"""

_BLANK = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark
_X12_START = re.compile(rb"(?:ISA|GS|ST)[^A-Za-z0-9\s\"{\[]")
"""An X12 segment: ISA, or GS or ST (a transaction without its ISA), then its element
separator."""


def _utf16(head: bytes) -> bytes | None:
    """The first bytes of a UTF-16 input as ASCII, or None when it is not UTF-16."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head[2:] if head[:2] == b"\xff\xfe" else b"\x00" + head[2:]
    if len(head) >= 4 and head[1] == 0 and head[3] == 0:
        return head[0::2]
    if len(head) >= 4 and head[0] == 0 and head[2] == 0:
        return head[1::2]
    return None


def detect_format(first_line: bytes) -> InputFormat:
    """The format of an input file, from its first non-blank line (its first bytes suffice
    for X12, which often has no line breaks at all).

    X12 is told by its first segment (after a byte-order mark, in UTF-8 or UTF-16). A first
    line that is a whole JSON value makes the file JSON Lines, unless it is a FHIR Bundle; an
    opening brace that does not close on its line starts one multi-line document. Anything
    else is JSON Lines, whose lines then become dead letters one by one, as before.
    """
    head = first_line.lstrip(_BLANK)
    wide = _utf16(first_line[:64])
    if _X12_START.match(head) or (wide is not None and _X12_START.match(wide.lstrip(_BLANK))):
        return "x12"
    if not head.startswith(b"{"):
        return "json-lines"
    try:
        document = orjson.loads(head)
    except orjson.JSONDecodeError:
        # A line that is only the start of an object is a pretty-printed document; a broken
        # event on one line stays a JSON Lines record (and becomes its dead letter).
        opened = head.rstrip(_BLANK)
        return "json-document" if opened == b"{" or b'"resourceType"' in opened else "json-lines"
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        return "fhir-bundle-lines"
    return "json-lines"


# --- what an adapter produces ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a claim cannot be read: where in the source (X12 loop, segment, position and
    element; FHIR element path) and what, as a dead letter's `error.details` entry."""

    loc: tuple[str | int, ...]
    message: str
    type: str


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """A procedure line read from an 837 service line or a FHIR `Claim.item`."""

    line: int
    code: str
    units: int
    modifiers: tuple[str, ...]
    pointers: tuple[int, ...] | None
    minutes: int | None = None
    """For a line billed in time (837P SV103 MJ, a FHIR quantity in minutes): its minutes,
    the line being one unit of service."""


@dataclass(slots=True)
class AdaptedClaim:
    """One claim read from an 837 or FHIR input, before the contract and the rules."""

    raw: bytes
    """The claim's part of the input, which a dead letter keeps whole."""
    origin: Origin
    claim_id: str | None
    line: int = 1
    """Where the claim starts in its file: the number of its CLM segment in an 837 (its
    line when the file has one segment a line), the line of its Bundle or Claim in JSON."""
    event: bytes | None = None
    """The encounter event (JSON) the claim maps to; None when `problems` says why not."""
    problems: tuple[Problem, ...] = ()
    kind: DeadLetterKind = "contract_violation"
    """The dead-letter kind when `problems` is not empty: `not_utf8` for an undecodable 837."""
    places: dict[tuple[str | int, ...], str] = field(default_factory=dict)
    """Where each part of the event came from (`("diagnoses", 2)` -> `HI01-4 at ...`), so
    that a contract violation names the segment or element to fix."""

    def __len__(self) -> int:
        return len(self.raw)

    def place_of(self, loc: tuple[str | int, ...]) -> str | None:
        """The source location of an event path, or of its closest mapped parent."""
        for end in range(len(loc), 0, -1):
            place = self.places.get(loc[:end])
            if place is not None:
                return place
        return None


_EVENT_NAMESPACE = uuid.UUID("6f1d3c64-5a0b-4f4e-9a53-6a1c2f0e8d11")


def event_id_for(origin: Origin, raw: bytes) -> str:
    """A deterministic event ID: the same claim of the same submission always gets the same
    one, so that a consumer drops a re-sent file's claims as duplicates, while two claims
    with identical content at different positions stay two events."""
    digest = hashlib.sha256(raw).hexdigest()
    identity = orjson.dumps(origin.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return str(uuid.uuid5(_EVENT_NAMESPACE, identity.decode() + digest))


@dataclass(slots=True)
class ClaimFacts:
    """What an adapter read from a claim, in the encounter event's terms."""

    claim_id: str
    setting: Setting
    date_of_service: dt.date
    diagnoses: list[str]
    procedures: list[ServiceLine]
    discharge_date: dt.date | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None
    payer_id: str | None = None


def encounter_event(facts: ClaimFacts, origin: Origin, raw: bytes) -> bytes:
    """The encounter event for an adapted claim, as JSON (the contract checks it next)."""
    event: dict[str, object] = {
        "schema_version": 1,
        "event_id": event_id_for(origin, raw),
        "event_type": "encounter.coded",
        "claim_id": facts.claim_id,
        "setting": facts.setting,
        "date_of_service": facts.date_of_service.isoformat(),
    }
    if facts.discharge_date is not None:
        event["discharge_date"] = facts.discharge_date.isoformat()
    patient = {
        "birth_date": facts.birth_date.isoformat() if facts.birth_date else None,
        "sex": facts.sex,
    }
    if any(value is not None for value in patient.values()):
        event["patient"] = {k: v for k, v in patient.items() if v is not None}
    if facts.payer_id:
        event["payer_id"] = facts.payer_id
    event["diagnoses"] = [
        {"sequence": sequence, "code": code} for sequence, code in enumerate(facts.diagnoses, 1)
    ]
    if facts.procedures:
        event["procedures"] = [_procedure(line) for line in facts.procedures]
    event["origin"] = origin.model_dump(mode="json", exclude_none=True)
    return orjson.dumps(event)


def _procedure(line: ServiceLine) -> dict[str, object]:
    entry: dict[str, object] = {"line": line.line, "code": line.code, "units": line.units}
    if line.modifiers:
        entry["modifiers"] = list(line.modifiers)
    if line.pointers is not None:
        entry["diagnosis_pointers"] = list(line.pointers)
    if line.minutes is not None:
        entry["minutes"] = line.minutes
    return entry


MAX_MESSAGE_CHARS = 1_000
"""A problem's or note's message is cut here: pyx12 quotes the segment it complains about,
which may be long."""


def printable(text: str) -> str:
    """Text for an output: characters that were not UTF-8 in the input (kept as surrogate
    escapes) become U+FFFD, so that the output is valid JSON; cut at `MAX_MESSAGE_CHARS`."""
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "\u2026"
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def capped_notes(notes: list[OriginNote]) -> tuple[OriginNote, ...] | None:
    """A claim's notes for its `origin`: at most `MAX_ORIGIN_NOTES`, the last counting the
    ones left out; None when there are none."""
    if not notes:
        return None
    if len(notes) <= MAX_ORIGIN_NOTES:
        return tuple(notes)
    left = len(notes) - MAX_ORIGIN_NOTES + 1
    more = OriginNote(message=f"{left} more notes are not kept", type="more_notes")
    return (*notes[: MAX_ORIGIN_NOTES - 1], more)


def whole_units(quantity: Decimal | str | float | int | None) -> int | None:
    """Units as the contract counts them (a whole number), or None when not whole or < 1.

    837 quantities are decimals (`1`, `2.0`) and FHIR's are decimals too; a fractional
    quantity cannot be carried as units.
    """
    if quantity is None:
        return 1
    try:
        value = Decimal(str(quantity))
    except InvalidOperation:
        return None
    if value != value.to_integral_value() or value < 1:
        return None
    return int(value)
