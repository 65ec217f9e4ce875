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
import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from stream.core.adapters import fhir
from stream.core.adapters.formats import AdaptedClaim
from stream.core.claim import ClaimDiagnosis, ClaimProcedure, build_claim
from stream.core.codes.calendar import load_calendar
from stream.core.codes.codeset import CodeIndex
from stream.core.codes.cpt import CptCatalog
from stream.core.codes.icd10cm import Icd10cmCatalog
from stream.core.codes.releases import LoadedRelease
from stream.core.contracts import (
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
    Route,
    Source,
)
from stream.core.rules import CATALOGUE, Rule
from stream.core.rules.config import Policies, RuleFinding, Ruleset


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


def freeze_reference_data() -> None:
    """Exempt everything alive now from garbage collection; call once the Decider is built.

    The ICD-10-CM tables are millions of long-lived objects. Without this, each full
    collection (triggered by cyclic garbage such as exceptions with tracebacks, which dead
    letters produce) walks all of them again: about 15 % of a batch's time.
    """
    gc.collect()
    gc.freeze()


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
        releases: Sequence[LoadedRelease] = (),
    ) -> None:
        """`releases`: the loaded ICD-10-CM releases (`stream.core.codes.store`), when no
        `icd10cm` catalogue is given."""
        self.policies = policies or Policies()
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
        self._details = CodeDetails()
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
            return self._decision(event, raw, source, now)
        except Exception as error:  # a bug in the stage; the input is kept whole for replay
            return internal_error(value, source, key, now, error)

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
        if value is None or not value.strip() or len(value) > MAX_RECORD_BYTES:
            return _unreadable(value, source, key, now)
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
        document["diagnoses"] = [self._details.diagnosis(d) for d in claim.diagnoses]
        document["procedures"] = [self._details.procedure(p) for p in claim.billed_procedures]
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


def _unreadable(value: bytes | None, source: Source, key: bytes | None, now: dt.datetime) -> Output:
    """The dead letter of a record with nothing to read: a tombstone, empty, or too large."""
    if value is None:
        return dead_letter(
            value, source, key, now, "invalid_json", "the record has no value (a tombstone)"
        )
    if len(value) > MAX_RECORD_BYTES:
        return dead_letter(
            value,
            source,
            key,
            now,
            "too_large",
            f"the record is {len(value):,} bytes; the limit is {MAX_RECORD_BYTES:,} "
            "bytes (1 MiB, the broker's default message size)",
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
    code's standing on the claim's date and the release describing it, and claims repeat
    the same few thousand: each is serialised once and remembered, up to a bound.
    """

    LIMIT = 100_000

    def __init__(self) -> None:
        self._diagnoses: dict[tuple[int, str, bool, bool, str | None], orjson.Fragment] = {}
        self._procedures: dict[tuple[int, str], orjson.Fragment] = {}

    def diagnosis(self, d: ClaimDiagnosis) -> orjson.Fragment:
        key = (d.sequence, d.code, d.valid, d.billable, d.info.description)
        detail = self._diagnoses.get(key)
        if detail is None:
            detail = self._keep(
                self._diagnoses,
                key,
                {
                    "sequence": d.sequence,
                    "code": d.code,
                    "description": d.info.description,
                    "billable": d.billable,
                    "kind": d.info.kind if d.valid else "invalid",
                },
            )
        return detail

    def procedure(self, p: ClaimProcedure) -> orjson.Fragment:
        key = (p.line, p.code)
        detail = self._procedures.get(key)
        if detail is None:
            detail = self._keep(
                self._procedures,
                key,
                {
                    "line": p.line,
                    "code": p.code,
                    "description": p.info.description,
                    "category": p.info.category,
                    "add_on": p.info.add_on,
                    "known": p.info.known,
                },
            )
        return detail

    def _keep(self, kept: dict[Any, orjson.Fragment], key: Any, detail: object) -> orjson.Fragment:
        fragment = orjson.Fragment(orjson.dumps(detail))
        if len(kept) < self.LIMIT:
            kept[key] = fragment
        return fragment


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


def source_document(source: Source) -> dict[str, str | int]:
    """The `source` member of an output record."""
    if isinstance(source, KafkaSource):
        return {"topic": source.topic, "partition": source.partition, "offset": source.offset}
    return {"file": source.file, "line": source.line}


# --- dead letters --------------------------------------------------------------------------

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
    details = tuple(_detail(e) for e in errors)
    head = details[0]
    if head.type == "model_type" and not head.loc:
        message = "the record is JSON but not an object: an encounter event is a JSON object"
    else:
        where = ".".join(str(part) for part in head.loc) or "the record"
        message = f"{where}: {_FRIENDLY.get(head.type, head.msg)}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
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
) -> Output:
    """A dead letter that keeps the input exactly: as text when UTF-8, else base64.

    `origin` and `claim_id` are those of a claim read from an 837 or FHIR, when known.
    """
    raw = value or b""
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        raw_value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raw_value, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    letter = DeadLetter.model_construct(
        schema_version=1,
        error=DeadLetterError.model_construct(kind=kind, message=message, details=details),
        raw_value=raw_value,
        raw_value_encoding=encoding,
        raw_key=_key_text(key),
        source=source,
        received_at=received_at,
        origin=origin,
    )
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
        value=letter.model_dump_json().encode(),
        headers=headers,
        event_id=event_id,
        claim_id=claim_id,
        dead_letter_kind=kind,
    )


def _identifiers(raw: bytes) -> tuple[str | None, str | None]:
    """`event_id` and `claim_id` of a JSON object that broke the contract, for the logs."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    event_id, claim_id = document.get("event_id"), document.get("claim_id")
    return (
        event_id if isinstance(event_id, str) else None,
        claim_id if isinstance(claim_id, str) else None,
    )


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
