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
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

import orjson

from stream.core.contracts import DeadLetterKind, Origin, Setting, Sex

InputFormat = Literal["json-lines", "fhir-bundle-lines", "json-document", "x12"]
"""How an input file is read into records.

- `json-lines`: one record a line, each a native encounter event or a FHIR `Claim`.
- `fhir-bundle-lines`: one FHIR `Bundle` a line (a minified Bundle is one line); each
  Bundle is split into its claims.
- `json-document`: one JSON document over several lines (a pretty-printed Bundle or Claim).
- `x12`: ASC X12 interchanges (837P 005010X222A1, 837I 005010X223A2), split into claims.
"""

_BLANK = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark


def detect_format(first_line: bytes) -> InputFormat:
    """The format of an input file, from its first non-blank line (its first bytes suffice
    for X12, which often has no line breaks at all).

    A first line that is a whole JSON value makes the file JSON Lines, unless it is a FHIR
    Bundle; an opening brace that does not close on its line starts one multi-line document.
    Anything else is JSON Lines, whose lines then become dead letters one by one, as before.
    """
    head = first_line.lstrip(_BLANK)
    if head.startswith(b"ISA"):
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
    return entry


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
