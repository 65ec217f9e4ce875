"""The wire contract, version 1: encounter event in; decision or dead letter out.

These models are the contract. `schemas/` holds the JSON Schema exported from them
(`claims-stage schemas`), and a test fails when the two drift apart. A change here that
changes what is accepted or produced bumps `SCHEMA_VERSION`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
MAX_RECORD_BYTES = 1_048_576
"""Inputs larger than this are dead letters of kind `too_large` (the broker's default limit)."""

Setting = Literal["inpatient", "outpatient", "professional"]
TreatmentTarget = Literal["primary", "secondary", "both"]
PrimaryStatus = Literal["active", "eradicated", "unknown"]
Sex = Literal["F", "M", "U"]
Outcome = Literal["validated", "rejected"]
Severity = Literal["error", "warning"]
DeadLetterKind = Literal[
    "not_utf8", "invalid_json", "contract_violation", "too_large", "internal_error"
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
    normal = _NORMAL_FORMS.get(code)
    if normal is None:
        bare = code.strip().upper().replace(".", "")
        normal = f"{bare[:3]}.{bare[3:]}" if len(bare) > 3 else bare
        if len(_NORMAL_FORMS) < 100_000:  # bounded: arbitrary strings cannot grow it forever
            _NORMAL_FORMS[code] = normal
    return normal


_NORMAL_FORMS: dict[str, str] = {}
"""Codes as received -> their normal form: claims repeat a few thousand codes all day."""


def _integer_only(value: object) -> object:
    """JSON `true` and `1.0` equal 1 in Python, and `Literal[1]` would take them: a version
    is the integer 1, and a boolean is not a number."""
    if isinstance(value, bool | float):
        raise PydanticCustomError(
            "literal_error", f"Input should be the integer 1, not {type(value).__name__} {value!r}"
        )
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_integer_only)]
NonEmptyText = Annotated[str, Field(min_length=1, pattern=r"\S")]
Icd10cmCode = Annotated[
    str,
    AfterValidator(normalize_icd10cm),
    Field(description="ICD-10-CM, with or without the dot; carried dotted and upper-case."),
]
Modifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2}$")]
Sequence = Annotated[int, Field(ge=1)]


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
    id: str | None = None
    birth_date: dt.date | None = None
    sex: Sex | None = None


class EncounterContext(Contract):
    """Clinical context the rules read. A rule that needs an absent or null field does not fire."""

    reason_for_encounter: str | None = None
    treatment_directed_at: TreatmentTarget | None = None
    primary_status: PrimaryStatus | None = None
    tnm: str | None = None


class DiagnosisEntry(Contract):
    sequence: Sequence = Field(
        description="1 = principal (inpatient) or first-listed (other settings)."
    )
    code: Icd10cmCode


class ProcedureEntry(Contract):
    line: Sequence
    code: str = Field(description="CPT or HCPCS, matched exactly as received.")
    units: int = Field(default=1, ge=1)
    modifiers: tuple[Modifier, ...] | None = Field(default=None, max_length=4)
    diagnosis_pointers: tuple[Sequence, ...] | None = Field(default=None, max_length=4)
    minutes: int | None = Field(
        default=None,
        ge=1,
        description="The minutes billed, for a line billed in time (837P SV103 MJ, anesthesia; "
        "a FHIR quantity in UCUM min); `units` then counts the service (1), not the minutes.",
    )


class EncounterEvent(Contract):
    """A coded encounter, as a coding system publishes it to the input topic."""

    model_config = ConfigDict(
        json_schema_extra={
            "description": (
                "A coded encounter. Beyond the field types: diagnosis sequences are unique "
                "and run 1..n without gaps, procedure lines are unique, and every diagnosis "
                "pointer names a diagnosis sequence present on the claim."
            )
        }
    )

    schema_version: SchemaVersion
    event_id: NonEmptyText
    event_type: Literal["encounter.coded"] = "encounter.coded"
    occurred_at: dt.datetime | None = None
    claim_id: NonEmptyText
    encounter_id: str | None = None
    setting: Setting
    date_of_service: dt.date
    discharge_date: dt.date | None = None
    patient: Patient | None = None
    payer_id: str | None = None
    context: EncounterContext | None = None
    diagnoses: tuple[DiagnosisEntry, ...] = Field(min_length=1, max_length=25)
    procedures: tuple[ProcedureEntry, ...] | None = None
    origin: Origin | None = Field(
        default=None, description="Set when the stage read the claim from an 837 or FHIR."
    )

    @model_validator(mode="after")
    def _cross_references(self) -> EncounterEvent:
        if self.discharge_date is not None and self.discharge_date < self.date_of_service:
            # the discharge date chooses an inpatient claim's code set: it must be right
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
        description="The ICD-10-CM code set in force on the claim's date, as the date it "
        "took effect (`2026-04-01` is FY2026's April update); `none` when the date lies "
        "outside the loaded code sets (finding MET-042). The date is the discharge date of "
        "an inpatient claim, the date of service otherwise."
    )
    cpt: str
    icd10cm_fiscal_year: int | None = Field(
        default=None,
        description="The fiscal year of that code set (FY2027 runs 2026-10-01..2027-09-30); "
        "null when none applies.",
    )
    icd10cm_descriptions: str | None = Field(
        default=None,
        description="The ICD-10-CM release the diagnosis descriptions come from.",
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


class DeadLetter(Contract):
    """An input the stage could not read as an encounter event, kept whole."""

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
