"""The decision function: raw bytes in, exactly one output record out, whatever the bytes.

`Decider.decide` is what the batch command, the stream worker, the tests and the benchmark
all call. It decodes, checks the contract, enriches the codes, runs the rules of the claim's
policy (its payer's, or the global one) and routes: `validated`, `review`, `rejected`, or
`dead_letter` with the reason and the input kept whole. It does no I/O, holds no mutable
state, and never raises.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from stream.core.adapters import fhir
from stream.core.adapters.formats import AdaptedClaim
from stream.core.claim import build_claim
from stream.core.codes.calendar import load_calendar
from stream.core.codes.codeset import CodeIndex
from stream.core.codes.cpt import CptCatalog
from stream.core.codes.icd10cm import Icd10cmCatalog
from stream.core.codes.releases import LoadedRelease
from stream.core.contracts import (
    MAX_DEAD_LETTER_BYTES,
    MAX_IDENTIFIER_LENGTH,
    MAX_RECORD_BYTES,
    CodeSets,
    DeadLetter,
    DeadLetterError,
    DeadLetterKind,
    EncounterEvent,
    ErrorDetail,
    KafkaSource,
    Origin,
    Outcome,
    RawValueTruncation,
    Route,
    Source,
)
from stream.core.rules import CATALOGUE, Rule
from stream.core.rules.config import Policies, RuleFinding, Ruleset

MAX_OUTPUT_BYTES = 1024 * 1024
"""The largest decision sent: the output topics' `max.message.bytes` (Kafka's default, 1 MiB).
A larger decision is a dead letter of kind `decision_too_large` that keeps the input."""


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class Output:
    """One output record, ready to send: where to, key, value and headers."""

    route: Route
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    """A list, as librdkafka takes it: no copy on the way out."""
    event_id: str | None
    claim_id: str | None
    findings: tuple[RuleFinding, ...] = ()
    dead_letter_kind: DeadLetterKind | None = None
    code_set: str | None = None
    """The ICD-10-CM fiscal year that judged a decision (`FY2026`); None for a dead letter."""
    nearest_code_set: bool = False
    """No loaded code set covers the claim's date: the nearest one judged it (MET-042)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stage_code_index(rules: tuple[Rule, ...] = CATALOGUE) -> CodeIndex:
    """The code index of the stage: every code set its rules read, one bit each.

    Built from the whole catalogue, so that one catalogue of codes serves any rules
    configuration (a disabled rule's sets cost a bit and nothing else).
    """
    return CodeIndex(codes for rule in rules for codes in rule.code_sets)


class Decider:
    """Reference data and policies, loaded once; `decide` is then a pure function of its input."""

    def __init__(
        self,
        policies: Policies | None = None,
        icd10cm: Icd10cmCatalog | None = None,
        cpt: CptCatalog | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        max_output_bytes: int = MAX_OUTPUT_BYTES,
        releases: Sequence[LoadedRelease] = (),
    ) -> None:
        """`releases`: the loaded ICD-10-CM releases (`stream.core.codes.store`), when no
        `icd10cm` catalogue is given."""
        self.policies = policies or Policies()
        self.max_record_bytes = max_record_bytes
        """Input records larger than this are dead letters of kind `too_large`."""
        self.max_output_bytes = max_output_bytes
        """A decision larger than this is not sent; its input goes to the dead-letter topic."""
        self.ruleset = self.policies.default
        """The global policy: the ruleset of every claim whose payer has no policy of its own."""
        self._payer_rulesets = self.policies.payers
        self.icd10cm = icd10cm or Icd10cmCatalog(
            load_calendar(releases=releases) if releases else None, stage_code_index()
        )
        missing = sorted(
            {
                c.spec
                for ruleset in self.policies.rulesets().values()
                for c in ruleset.code_sets
                if c not in self.icd10cm.index
            }
        )
        if missing:
            raise ValueError(f"code sets the rules read are not in the code index: {missing}")
        self.cpt = cpt or CptCatalog()
        calendar = self.icd10cm.calendar
        self._details = CodeDetails(self.icd10cm, self.cpt)
        # One `code_sets` document per period, made once: decisions share them.
        self._code_sets = [
            CodeSets(
                icd10cm=period.release,
                cpt=self.cpt.release,
                icd10cm_fiscal_year=period.fiscal_year,
                icd10cm_descriptions=self.icd10cm.release
                if period.loaded is None
                else period.release,
                icd10cm_source=period.source,
            ).model_dump()
            for period in calendar.periods
        ]

    @property
    def code_set_labels(self) -> tuple[str, ...]:
        """Every value an output's `code_set` can take: the fiscal years."""
        return tuple(f"FY{year}" for year in self.icd10cm.calendar.fiscal_years)

    @property
    def code_set_version(self) -> str:
        """What this stage judges codes by, in one line: years, dates and sources."""
        calendar = self.icd10cm.calendar
        return (
            f"{calendar.coverage} from {calendar.sources}; descriptions {self.icd10cm.descriptions}"
        )

    @property
    def code_sets_end(self) -> dt.date:
        """The last date a loaded code set covers (the end of the latest set's fiscal year)."""
        return self.icd10cm.calendar.last

    def decide(
        self,
        value: bytes | AdaptedClaim | None,
        source: Source,
        key: bytes | None = None,
        received_at: dt.datetime | None = None,
    ) -> Output:
        """Decide one input record. Never raises: a failure is a dead letter.

        The record is a native encounter event, a FHIR `Claim` (or a Bundle holding one), or
        a claim an adapter has already read from an 837 or a Bundle (`AdaptedClaim`).
        """
        now = received_at or _utc_now()
        try:
            read = self._read(value, source, key, now)
            if isinstance(read, Output):
                return read
            event, raw = read
            output = self._decision(event, raw, source, now)
        except Exception as error:  # a bug in the stage; the input is kept whole for replay
            return internal_error(value, source, key, now, error)
        if len(output.value) > self.max_output_bytes:
            return decision_too_large(
                value,
                source,
                key,
                now,
                f"the decision is {len(output.value):,} bytes; the output topics take at "
                f"most {self.max_output_bytes:,} bytes",
                event_id=output.event_id,
                claim_id=output.claim_id,
            )
        return output

    def read(
        self, value: bytes | AdaptedClaim | None, source: Source, key: bytes | None = None
    ) -> EncounterEvent | Output:
        """The encounter event of an input record, or its dead letter. Never raises."""
        now = _utc_now()
        try:
            read = self._read(value, source, key, now)
        except Exception as error:
            return internal_error(value, source, key, now, error)
        return read if isinstance(read, Output) else read[0]

    def ruleset_of(self, event: EncounterEvent) -> Ruleset:
        """The policy that judges this claim: its payer's, or the global one."""
        return self._payer_rulesets.get(event.payer_id or "", self.ruleset)

    def _read(
        self,
        value: bytes | AdaptedClaim | None,
        source: Source,
        key: bytes | None,
        now: dt.datetime,
    ) -> tuple[EncounterEvent, bytes] | Output:
        """The encounter event of a record and the JSON it was read from (the decision's
        `encounter`), or the record's dead letter."""
        if isinstance(value, AdaptedClaim):
            return self._read_adapted(value, source, key, now)
        if value is None or len(value) > self.max_record_bytes or not value.strip():
            return _unreadable(value, source, key, now, self.max_record_bytes)
        if b'"resourceType"' in value:  # cheap test first: the hot path is native events
            not_utf8 = _not_utf8(value, source, key, now)
            if not_utf8 is not None:
                return not_utf8
            adapted = fhir_record(value)
            if adapted is not None:
                return self._read_adapted(adapted, source, key, now)
        if value[:64].lstrip()[:3] == b"ISA":
            return dead_letter(
                value,
                source,
                key,
                now,
                "contract_violation",
                "the record is an X12 interchange: one record is one claim, as an encounter "
                "event or a FHIR Claim; `claims-stage ingest` splits an 837 into its claims",
            )
        try:
            return EncounterEvent.model_validate_json(value), value
        except ValidationError as error:
            # The JSON reader refuses bytes that are not UTF-8; say so in those words.
            not_utf8 = _not_utf8(value, source, key, now)
            if not_utf8 is not None:
                return not_utf8
            kind, message, details = explain_validation_error(error)
            return dead_letter(value, source, key, now, kind, message, details)

    def _read_adapted(
        self, adapted: AdaptedClaim, source: Source, key: bytes | None, now: dt.datetime
    ) -> tuple[EncounterEvent, bytes] | Output:
        """A claim read from an 837 or FHIR: the same contract and rules as a native event."""
        checked = check_adapted(adapted, source, key, now)
        if isinstance(checked, Output):
            return checked
        return checked, adapted.event or b""

    def _decision(
        self, event: EncounterEvent, raw: bytes, source: Source, now: dt.datetime
    ) -> Output:
        claim = build_claim(event, self.icd10cm, self.cpt)
        ruleset = self._payer_rulesets.get(event.payer_id or "", self.ruleset)
        findings = ruleset.evaluate(claim)
        period = claim.code_set
        route, review_rules = ruleset.route(findings)
        outcome: Outcome = "rejected" if route == "rejected" else "validated"
        # Serialised straight to JSON with orjson: this is the hot path, and the contract's
        # `Decision` model reads every output back in the tests. The encounter goes out as
        # received, byte for byte (it has just been parsed, so it is a JSON object).
        document: dict[str, object] = {
            "schema_version": 1,
            "event_id": event.event_id,
            "claim_id": event.claim_id,
            "outcome": outcome,
            "decided_at": now,
            "ruleset_version": ruleset.version,
            "code_sets": self._code_sets[period.index],
            "findings": findings,
        }
        if review_rules:  # only then: without review routes, decisions stay as they were
            document["review_rules"] = review_rules
        diagnosis, procedure = self._details.diagnosis, self._details.procedure
        texts = period.index if period.loaded is not None else -1  # a release's own texts
        document["diagnoses"] = [
            diagnosis(d.sequence, d.code, d.valid, d.billable, texts) for d in claim.diagnoses
        ]
        document["procedures"] = [procedure(p.line, p.code) for p in claim.billed_procedures]
        document["encounter"] = orjson.Fragment(raw.strip())
        document["source"] = source_document(source)
        if event.origin is not None:  # only for a claim read from an 837 or FHIR
            document.update(_origin_member(event.origin))
        headers = [
            ("event_id", event.event_id.encode()),
            ("outcome", outcome.encode()),
            ("ruleset_version", ruleset.version_header),
        ]
        if review_rules:
            headers.append(("route", b"review"))
        return Output(
            route=route,
            key=event.claim_id.encode(),
            value=orjson.dumps(document, option=orjson.OPT_UTC_Z),
            headers=headers,
            event_id=event.event_id,
            claim_id=event.claim_id,
            findings=findings,
            code_set=period.label,
            nearest_code_set=claim.nearest_code_set,
        )


def _unreadable(
    value: bytes | None, source: Source, key: bytes | None, now: dt.datetime, limit: int
) -> Output:
    """The dead letter of a record with nothing to read: a tombstone, empty, or too large."""
    if value is None:
        return dead_letter(
            value, source, key, now, "invalid_json", "the record has no value (a tombstone)"
        )
    if len(value) > limit:
        return dead_letter(
            value,
            source,
            key,
            now,
            "too_large",
            f"the record is {len(value):,} bytes; the limit is {limit:,} bytes (the "
            "maximum record size)",
        )
    return dead_letter(value, source, key, now, "invalid_json", "the record is empty")


def _not_utf8(value: bytes, source: Source, key: bytes | None, now: dt.datetime) -> Output | None:
    """The dead letter of a record that is not UTF-8, saying where; None when it is."""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as error:
        return dead_letter(
            value,
            source,
            key,
            now,
            "not_utf8",
            f"the record is not UTF-8: byte 0x{value[error.start]:02x} at offset "
            f"{error.start} cannot be decoded",
        )
    return None


class CodeDetails:
    """The decision's description of each diagnosis and procedure line, as JSON fragments.

    A line's description depends only on its position, its code and (for a diagnosis) the
    code's standing on the claim's date and the release whose texts describe it, and claims
    repeat the same few thousand: each is serialised once and remembered, within an entry
    budget (least recently used first out; `functools.lru_cache`, whose hit is one call in
    C: this runs for every line of every claim). `diagnosis(sequence, code, valid, billable,
    texts)` (`texts`: the index of a loaded release's period, -1 for the bundled texts),
    `procedure(line, code)`.
    """

    DIAGNOSES_KEPT = 16_384
    """Entry budget of the diagnosis details: a sequence (at most 25), a code of at most 11
    characters and two booleans; the fragment, about 250 bytes. About 500 bytes an entry."""
    PROCEDURES_KEPT = 16_384
    """Entry budget of the procedure details: a line (at most 999) and a code of at most 10
    characters; the fragment, about 200 bytes. About 700 bytes an entry."""

    def __init__(
        self,
        icd10cm: Icd10cmCatalog,
        cpt: CptCatalog,
        diagnoses_kept: int = DIAGNOSES_KEPT,
        procedures_kept: int = PROCEDURES_KEPT,
    ) -> None:
        self._icd10cm = icd10cm
        self._cpt = cpt
        self.diagnosis = functools.lru_cache(maxsize=diagnoses_kept)(self._diagnosis)
        self.procedure = functools.lru_cache(maxsize=procedures_kept)(self._procedure)

    def _diagnosis(
        self, sequence: int, code: str, valid: bool, billable: bool, texts: int
    ) -> orjson.Fragment:
        icd10cm = self._icd10cm
        lookup = icd10cm.lookup if texts < 0 else icd10cm.lookups[texts]
        info = lookup(code)  # the claim's own description of the code
        return _fragment(
            {
                "sequence": sequence,
                "code": code,
                "description": info.description,
                "billable": billable,
                "kind": info.kind if valid else "invalid",
            }
        )

    def _procedure(self, line: int, code: str) -> orjson.Fragment:
        info = self._cpt.lookup(code)
        return _fragment(
            {
                "line": line,
                "code": code,
                "description": info.description,
                "category": info.category,
                "add_on": info.add_on,
                "known": info.known,
            }
        )


def _fragment(detail: object) -> orjson.Fragment:
    # A copy of exactly its size: the bytes orjson returns hold a buffer of 4 KiB or more,
    # twenty times the ~200 bytes of a detail, for as long as the cache keeps them.
    return orjson.Fragment(bytes(memoryview(orjson.dumps(detail))))


def _origin_member(origin: Origin | None) -> dict[str, object]:
    """The decision's `origin`, only when the claim came from an 837 or FHIR."""
    return {} if origin is None else {"origin": origin.model_dump(mode="json", exclude_none=True)}


def check_adapted(
    adapted: AdaptedClaim, source: Source, key: bytes | None, now: dt.datetime
) -> EncounterEvent | Output:
    """The encounter event of a claim read from an 837 or FHIR, checked against the contract,
    or its dead letter: what `decide` does before the rules, and what `ingest` does before
    it sends a claim's event to the input topic."""
    if adapted.problems or adapted.event is None:
        problems = adapted.problems
        message = problems[0].message if problems else "the claim could not be read"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        details = tuple(ErrorDetail(loc=p.loc, msg=p.message, type=p.type) for p in problems)
        return _adapted_letter(adapted, source, key, now, message, details, adapted.kind)
    try:
        return EncounterEvent.model_validate_json(adapted.event)
    except ValidationError as error:
        _, message, details = explain_validation_error(error)
        place = adapted.place_of(details[0].loc)
        if place is not None:
            message += f" ({place})"
        return _adapted_letter(adapted, source, key, now, message, details)


def fhir_record(value: bytes) -> AdaptedClaim | None:
    """A record that is a FHIR resource, read by the FHIR adapter; None when it is not."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None  # the native path reports the JSON error
    if not fhir.is_fhir(document):
        return None
    return fhir.adapt_record(document, value)


def _adapted_letter(
    adapted: AdaptedClaim,
    source: Source,
    key: bytes | None,
    now: dt.datetime,
    message: str,
    details: tuple[ErrorDetail, ...],
    kind: DeadLetterKind = "contract_violation",
) -> Output:
    return dead_letter(
        adapted.raw,
        source,
        key,
        now,
        kind,
        message,
        details,
        origin=adapted.origin,
        claim_id=adapted.claim_id,
    )


def internal_error(
    value: bytes | AdaptedClaim | None,
    source: Source,
    key: bytes | None,
    now: dt.datetime,
    error: Exception,
) -> Output:
    """The dead letter of a record the stage failed on: kept whole, to replay once fixed."""
    raw: bytes | None = value.raw if isinstance(value, AdaptedClaim) else value
    return dead_letter(
        raw,
        source,
        key,
        now,
        "internal_error",
        f"the stage failed on this record ({type(error).__name__}); it is kept "
        "whole and can be replayed once the stage is fixed",
        origin=value.origin if isinstance(value, AdaptedClaim) else None,
        claim_id=value.claim_id if isinstance(value, AdaptedClaim) else None,
    )


def decision_too_large(
    value: bytes | AdaptedClaim | None,
    source: Source,
    key: bytes | None,
    received_at: dt.datetime,
    reason: str,
    event_id: str | None = None,
    claim_id: str | None = None,
) -> Output:
    """The dead letter of a record whose decision is too large for its topic, input kept.

    Made by `decide` when the decision is over its limit, and by the worker when the broker
    refuses a decision as too large (a topic configured below that limit)."""
    raw: bytes | None = value.raw if isinstance(value, AdaptedClaim) else value
    letter = dead_letter(
        raw,
        source,
        key,
        received_at,
        "decision_too_large",
        f"{reason}; the input is kept whole",
        origin=value.origin if isinstance(value, AdaptedClaim) else None,
        claim_id=claim_id,
    )
    letter.event_id = event_id
    return letter


def source_document(source: Source) -> dict[str, str | int]:
    """The `source` member of an output record."""
    if isinstance(source, KafkaSource):
        return {"topic": source.topic, "partition": source.partition, "offset": source.offset}
    return {"file": source.file, "line": source.line}


# --- dead letters --------------------------------------------------------------------------

MAX_ERROR_DETAILS = 100
"""Problems a dead letter details, the first ones (its message counts them all): a record
with a problem on each of thousands of lines would otherwise make a dead letter many times
its own size."""

_FRIENDLY: dict[str, str] = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field: the contract does not have it",
}


def explain_validation_error(
    error: ValidationError,
) -> tuple[DeadLetterKind, str, tuple[ErrorDetail, ...]]:
    """Turn pydantic's errors into a dead-letter kind, one readable line, and details."""
    errors = error.errors(include_url=False, include_input=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        reason = first.get("ctx", {}).get("error", first["msg"])
        return "invalid_json", f"the record is not valid JSON: {reason}", ()
    details = tuple(_detail(e) for e in errors[:MAX_ERROR_DETAILS])
    head = details[0]
    if head.type == "model_type" and not head.loc:
        message = "the record is JSON but not an object: an encounter event is a JSON object"
    else:
        where = ".".join(str(part) for part in head.loc) or "the record"
        message = f"{where}: {_FRIENDLY.get(head.type, head.msg)}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return "contract_violation", message, details


def _detail(error: Any) -> ErrorDetail:
    context = error.get("ctx") or {}
    loc = tuple(error["loc"]) + tuple(context.get("where", ()))
    return ErrorDetail(loc=loc, msg=error["msg"], type=error["type"])


def dead_letter(
    value: bytes | None,
    source: Source,
    key: bytes | None,
    received_at: dt.datetime,
    kind: DeadLetterKind,
    message: str,
    details: tuple[ErrorDetail, ...] = (),
    origin: Origin | None = None,
    claim_id: str | None = None,
    max_bytes: int = MAX_DEAD_LETTER_BYTES,
) -> Output:
    """A dead letter that keeps the input exactly: as text when UTF-8, else base64.

    `origin` and `claim_id` are those of a claim read from an 837 or FHIR, when known. A
    dead letter that would be larger than `max_bytes` keeps the input's first part and the
    SHA-256 of the whole instead, and says so.
    """
    raw = value or b""
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        raw_value = raw.decode("utf-8")
    except UnicodeDecodeError:
        encoding = "base64"
        raw_value = base64.b64encode(raw).decode("ascii")
    letter = DeadLetter.model_construct(
        schema_version=1,
        error=DeadLetterError.model_construct(kind=kind, message=message, details=details),
        raw_value=raw_value,
        raw_value_encoding=encoding,
        raw_key=_key_text(key),
        source=source,
        received_at=received_at,
        origin=origin,
        raw_value_truncated=None,  # given, so that pydantic need not work out the default
    )
    document = letter.model_dump_json(exclude=_WHOLE).encode()
    if len(document) > max_bytes:
        document = _truncated(letter, raw, len(document), max_bytes)
    headers: list[tuple[str, bytes]] = [("error_kind", kind.encode())]
    if isinstance(source, KafkaSource):
        headers += [
            ("source_topic", source.topic.encode()),
            ("source_partition", str(source.partition).encode()),
            ("source_offset", str(source.offset).encode()),
        ]
    event_id: str | None = None
    if claim_id is None and origin is None and kind == "contract_violation":
        event_id, claim_id = _identifiers(raw)
    return Output(
        route="dead_letter",
        key=key,
        value=document,
        headers=headers,
        event_id=event_id,
        claim_id=claim_id,
        dead_letter_kind=kind,
    )


_WHOLE = {"raw_value_truncated"}
"""Left out of a dead letter that keeps its input whole (the member says how it was cut)."""


def _truncated(letter: DeadLetter, raw: bytes, size: int, max_bytes: int) -> bytes:
    """The dead letter with as much of the input's beginning as fits in `max_bytes`.

    The escaped size of a part of the input is not known before it is written (JSON escapes
    control characters in six bytes, base64 takes four for three): start from the share
    that the whole took, and leave out what is still too much until it fits.
    """
    error = letter.error
    total = len(raw)
    digest = hashlib.sha256(raw).hexdigest()
    keep = total * max_bytes // size
    while True:
        part = _whole_characters(raw, keep, letter.raw_value_encoding)
        cut = letter.model_copy(
            update={
                "error": error.model_copy(
                    update={
                        "message": f"{error.message} (the input of {total:,} bytes is too "
                        f"large to keep whole in a dead letter: it keeps the first "
                        f"{len(part):,} bytes and the SHA-256 of the whole)"
                    }
                ),
                "raw_value": _encoded(part, letter.raw_value_encoding),
                "raw_value_truncated": RawValueTruncation.model_construct(
                    kept_bytes=len(part), total_bytes=total, sha256=digest
                ),
            }
        )
        document = cut.model_dump_json().encode()
        if len(document) <= max_bytes or not part:
            return document
        # Each byte left out shortens the letter by one byte at least (six for a control
        # character), and the message's figures may change by a few bytes.
        keep = len(part) - (len(document) - max_bytes) - 64


def _whole_characters(raw: bytes, keep: int, encoding: str) -> bytes:
    """The first `keep` bytes of the input at most, cut between two characters of UTF-8
    text (or at a multiple of 3 bytes for base64, which then needs no padding inside)."""
    keep = max(keep, 0)
    if encoding == "base64":
        return raw[: keep - keep % 3]
    while 0 < keep < len(raw) and raw[keep] & 0xC0 == 0x80:  # a continuation byte
        keep -= 1
    return raw[:keep]


def _encoded(part: bytes, encoding: str) -> str:
    if encoding == "base64":
        return base64.b64encode(part).decode("ascii")
    return part.decode("utf-8")


def _identifiers(raw: bytes) -> tuple[str | None, str | None]:
    """`event_id` and `claim_id` of a JSON object that broke the contract, for the logs
    (only when they are identifiers the contract allows: the logs never carry more)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    event_id, claim_id = document.get("event_id"), document.get("claim_id")
    return _identifier(event_id), _identifier(claim_id)


def _identifier(value: object) -> str | None:
    if isinstance(value, str) and len(value) <= MAX_IDENTIFIER_LENGTH:
        return value
    return None


def _key_text(key: bytes | None) -> str | None:
    """The input key as text; a key that is not UTF-8 is written `base64:<data>`.

    The dead-letter record itself carries the key unchanged; this is its readable copy.
    """
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(key).decode("ascii")
