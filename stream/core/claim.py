"""The enriched claim: an encounter event with every code described, as the rules read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from stream.core.codes.calendar import CodeCalendar, CodeSetPeriod
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import CptCatalog, ProcedureCodes, ProcedureInfo
from stream.core.codes.icd10cm import CodeInfo, Icd10cmCatalog
from stream.core.contracts import (
    EncounterContext,
    EncounterEvent,
    PrimaryStatus,
    ProcedureEntry,
    Setting,
    TreatmentTarget,
)


class Fact:
    """What a claim has besides its codes, one bit each: rules that need a fact declare it
    (`needs`), and the ruleset does not call them on claims without it."""

    INVALID_CODE = 1 << 0  # a diagnosis code not valid on the claim's date
    HEADER_CODE = 1 << 1  # a valid code that is not billable on the claim's date
    REASON = 1 << 2  # context.reason_for_encounter is given
    TNM = 1 << 3  # context.tnm is given
    PRIMARY_STATUS = 1 << 4  # context.primary_status is given
    TREATMENT_TARGET = 1 << 5  # context.treatment_directed_at is given
    NOT_INPATIENT = 1 << 6  # an outpatient or professional claim
    NEAREST_CODE_SET = 1 << 7  # no loaded code set covers the date: judged by the nearest

    DESCRIPTIONS: ClassVar[dict[int, str]] = {
        INVALID_CODE: "a code not valid on its date",
        HEADER_CODE: "a valid code that is not billable on its date",
        REASON: "a reason for the encounter",
        TNM: "a TNM",
        PRIMARY_STATUS: "a primary status",
        TREATMENT_TARGET: "a treatment target",
        NOT_INPATIENT: "an outpatient or professional setting",
        NEAREST_CODE_SET: "a date no loaded ICD-10-CM code set covers",
    }

    @classmethod
    def describe(cls, facts: int) -> str:
        """`a TNM and a reason for the encounter`, for a rule's documented scope."""
        return " and ".join(text for bit, text in cls.DESCRIPTIONS.items() if facts & bit)


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class ClaimDiagnosis:
    sequence: int
    code: str  # normalised: dotted, upper case
    info: CodeInfo
    valid: bool
    """Valid on the claim's code-set date (billable or a header)."""
    billable: bool
    """Billable on the claim's code-set date."""

    @property
    def label(self) -> str:
        """`C79.51 (secondary malignant neoplasm of bone)`, for messages."""
        description = self.info.description
        if not description or not self.info.described:
            return self.code
        return f"{self.code} ({description[0].lower()}{description[1:]})"


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class ClaimProcedure:
    line: int
    code: str  # as received
    units: int
    info: ProcedureInfo


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class Claim:
    """What the rules see. Diagnoses are in sequence order; `valid` holds the codes valid
    in the claim's code set.

    Rules other than MET-001 and MET-002 look only at valid codes: a code that does not
    exist on the claim's date says nothing reliable about the claim, and MET-001 already
    rejects it.
    """

    setting: Setting
    date_of_service: dt.date
    code_set_date: dt.date
    """The date that chooses the code set: the discharge date of an inpatient claim (when
    given), the date of service otherwise."""
    code_set: CodeSetPeriod
    """The ICD-10-CM code set that judges the claim: the one in force on `code_set_date`,
    or the nearest one when no loaded set covers that date (`Fact.NEAREST_CODE_SET`)."""
    calendar: CodeCalendar
    """Every loaded code set, for messages that say when a code was valid."""
    reason_for_encounter: str | None
    treatment_directed_at: TreatmentTarget | None
    primary_status: PrimaryStatus | None
    tnm: str | None
    diagnoses: tuple[ClaimDiagnosis, ...]
    valid: tuple[ClaimDiagnosis, ...]
    first: ClaimDiagnosis | None
    """The principal or first-listed diagnosis (sequence 1) when its code is valid."""
    traits: int
    """OR of the traits of every valid code: `claim.traits & Trait.X` asks "any X?"."""
    memberships: int
    """OR of the code-set bits of every valid code (see `stream.core.codes.codeset`)."""
    facts: int
    """The claim's `Fact` bits."""
    code_bits: dict[CodeSet, int]
    """The stage's code index: each rule's code set and its bit."""
    procedures: tuple[ClaimProcedure, ...]
    """The procedures the rules read: none on an inpatient claim (see `build_claim`)."""
    procedure_codes: frozenset[str]
    billed_procedures: tuple[ClaimProcedure, ...]
    """Every procedure on the claim, enriched, as the decision reports them. On an
    inpatient claim a CPT code never makes the claim fail, but it counts as evidence for
    an exemption (catalogue section 0): exemptions read these."""

    @property
    def nearest_code_set(self) -> bool:
        """No loaded code set covers the claim's date: `code_set` is the nearest (MET-042)."""
        return bool(self.facts & Fact.NEAREST_CODE_SET)

    def has(self, traits: int) -> bool:
        """Whether any valid code has any of these traits."""
        return bool(self.traits & traits)

    def with_traits(self, traits: int) -> list[ClaimDiagnosis]:
        if not self.traits & traits:
            return []
        return [d for d in self.valid if d.info.traits & traits]

    def any_in(self, codes: CodeSet) -> bool:
        """Whether any valid code belongs to the set."""
        bit = self.code_bits.get(codes)
        if bit:
            return bool(self.memberships & bit)
        return any(d.code in codes for d in self.valid)  # a set outside the index

    def in_set(self, codes: CodeSet) -> list[ClaimDiagnosis]:
        """The valid diagnoses whose codes belong to the set, in sequence order."""
        bit = self.code_bits.get(codes)
        if bit:
            if not self.memberships & bit:
                return []
            return [d for d in self.valid if d.info.memberships & bit]
        return [d for d in self.valid if d.code in codes]

    def first_has(self, traits: int) -> bool:
        return self.first_with(traits) is not None

    def first_with(self, traits: int) -> ClaimDiagnosis | None:
        """The first-listed diagnosis, when it has one of these traits."""
        first = self.first
        return first if first is not None and first.info.traits & traits else None

    def first_in(self, codes: CodeSet) -> bool:
        first = self.first
        if first is None:
            return False
        bit = self.code_bits.get(codes)
        if bit:
            return bool(first.info.memberships & bit)
        return first.code in codes

    def procedures_in(self, codes: ProcedureCodes) -> list[ClaimProcedure]:
        if not self.procedures:
            return []
        return [p for p in self.procedures if p.code in codes]

    def evidence_in(self, codes: ProcedureCodes) -> list[ClaimProcedure]:
        """Billed procedures in the set, whatever the setting: evidence for an exemption."""
        if not self.billed_procedures:
            return []
        return [p for p in self.billed_procedures if p.code in codes]


def _line(procedure: ProcedureEntry) -> int:
    return procedure.line


def _procedures(entries: tuple[ProcedureEntry, ...], cpt: CptCatalog) -> tuple[ClaimProcedure, ...]:
    """The procedure lines in line order, each code described."""
    lookup = cpt.lookup
    if len(entries) > 1:
        entries = tuple(sorted(entries, key=_line))
    return tuple([ClaimProcedure(p.line, p.code, p.units, lookup(p.code)) for p in entries])


def _context_facts(context: EncounterContext) -> int:
    facts = 0
    if context.reason_for_encounter is not None:
        facts |= Fact.REASON
    if context.tnm is not None:
        facts |= Fact.TNM
    if context.primary_status is not None:
        facts |= Fact.PRIMARY_STATUS
    if context.treatment_directed_at is not None:
        facts |= Fact.TREATMENT_TARGET
    return facts


def code_set_date(event: EncounterEvent) -> dt.date:
    """The date that chooses the ICD-10-CM code set, as CMS picks it: the discharge date for
    inpatient claims, the date of service otherwise (and for an inpatient claim that gives
    no discharge date)."""
    if event.setting == "inpatient" and event.discharge_date is not None:
        return event.discharge_date
    return event.date_of_service


def build_claim(event: EncounterEvent, icd10cm: Icd10cmCatalog, cpt: CptCatalog) -> Claim:
    """Enrich an event: pick its code set, describe every code once, fold the traits."""
    # The contract guarantees sequences 1..n, so position n-1 holds sequence n.
    ordered = [event.diagnoses[0]] * len(event.diagnoses)
    for entry in event.diagnoses:
        ordered[entry.sequence - 1] = entry
    day = code_set_date(event)
    period, in_force = icd10cm.calendar.judge(day)
    bit = period.bit
    lookup = icd10cm.lookups[period.index]
    # list comprehensions, not generators: this runs for every claim
    diagnoses = tuple(
        [
            ClaimDiagnosis(
                d.sequence,
                d.code,
                (info := lookup(d.code)),
                (info.valid_periods & bit) != 0,
                (info.billable_periods & bit) != 0,
            )
            for d in ordered
        ]
    )
    valid = tuple([d for d in diagnoses if d.valid])
    traits = sets = 0
    facts = 0 if in_force else Fact.NEAREST_CODE_SET
    for diagnosis in valid:
        traits |= diagnosis.info.traits
        sets |= diagnosis.info.memberships
        if not diagnosis.billable:
            facts |= Fact.HEADER_CODE
    if len(valid) != len(diagnoses):
        facts |= Fact.INVALID_CODE
    context = event.context
    if context is not None:
        facts |= _context_facts(context)
    if event.setting != "inpatient":
        facts |= Fact.NOT_INPATIENT
    first = diagnoses[0] if diagnoses[0].valid else None
    billed = _procedures(event.procedures, cpt) if event.procedures else ()
    # Inpatient facility claims carry ICD-10-PCS, not CPT, so the catalogue applies its
    # CPT rules (and the CPT branches of MET-013 and MET-015) to outpatient and
    # professional claims only: CPT codes on an inpatient claim are reported, not judged.
    procedures = () if event.setting == "inpatient" else billed
    return Claim(
        setting=event.setting,
        date_of_service=event.date_of_service,
        code_set_date=day,
        code_set=period,
        calendar=icd10cm.calendar,
        reason_for_encounter=context.reason_for_encounter if context else None,
        treatment_directed_at=context.treatment_directed_at if context else None,
        primary_status=context.primary_status if context else None,
        tnm=context.tnm if context else None,
        diagnoses=diagnoses,
        valid=valid,
        first=first,
        traits=traits,
        memberships=sets,
        facts=facts,
        code_bits=icd10cm.index.bits,
        procedures=procedures,
        procedure_codes=frozenset([p.code for p in procedures]),
        billed_procedures=billed,
    )
