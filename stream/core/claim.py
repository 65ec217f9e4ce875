"""The enriched claim: an encounter event with every code described, as the rules read it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import CptCatalog, ProcedureCodes, ProcedureInfo
from stream.core.codes.icd10cm import CodeInfo, Icd10cmCatalog
from stream.core.contracts import (
    EncounterEvent,
    PrimaryStatus,
    ProcedureEntry,
    Setting,
    TreatmentTarget,
)


@dataclass(slots=True)  # not frozen: frozen construction costs ~4x on the hot path
class ClaimDiagnosis:
    sequence: int
    code: str  # normalised: dotted, upper case
    info: CodeInfo

    @property
    def label(self) -> str:
        """`C79.51 (secondary malignant neoplasm of bone)`, for messages."""
        description = self.info.description
        if not description:
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
    """What the rules see. Diagnoses are in sequence order; `valid` holds the real codes.

    Rules other than MET-001 and MET-002 look only at valid codes: a code that does not
    exist says nothing reliable about the claim, and MET-001 already rejects it.
    """

    setting: Setting
    date_of_service: dt.date
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
    procedures: tuple[ClaimProcedure, ...]
    """The procedures the rules read: none on an inpatient claim (see `build_claim`)."""
    procedure_codes: frozenset[str]
    billed_procedures: tuple[ClaimProcedure, ...]
    """Every procedure on the claim, enriched, as the decision reports them."""

    def has(self, traits: int) -> bool:
        """Whether any valid code has any of these traits."""
        return bool(self.traits & traits)

    def with_traits(self, traits: int) -> list[ClaimDiagnosis]:
        if not self.traits & traits:
            return []
        return [d for d in self.valid if d.info.traits & traits]

    def any_in(self, codes: CodeSet) -> bool:
        """Whether any valid code belongs to the set."""
        if codes.bit:
            return bool(self.memberships & codes.bit)
        return any(d.code in codes for d in self.valid)

    def in_set(self, codes: CodeSet) -> list[ClaimDiagnosis]:
        """The valid diagnoses whose codes belong to the set, in sequence order."""
        bit = codes.bit
        if bit:
            if not self.memberships & bit:
                return []
            return [d for d in self.valid if d.info.memberships & bit]
        return [d for d in self.valid if d.code in codes]

    def first_has(self, traits: int) -> bool:
        return self.first is not None and bool(self.first.info.traits & traits)

    def first_in(self, codes: CodeSet) -> bool:
        first = self.first
        if first is None:
            return False
        if codes.bit:
            return bool(first.info.memberships & codes.bit)
        return first.code in codes

    def procedures_in(self, codes: ProcedureCodes) -> list[ClaimProcedure]:
        if not self.procedures:
            return []
        return [p for p in self.procedures if p.code in codes]


def _line(procedure: ProcedureEntry) -> int:
    return procedure.line


def build_claim(event: EncounterEvent, icd10cm: Icd10cmCatalog, cpt: CptCatalog) -> Claim:
    """Enrich an event: describe every code once, and fold the diagnoses' traits."""
    # The contract guarantees sequences 1..n, so position n-1 holds sequence n.
    ordered = [event.diagnoses[0]] * len(event.diagnoses)
    for entry in event.diagnoses:
        ordered[entry.sequence - 1] = entry
    lookup = icd10cm.lookup
    diagnoses = tuple(ClaimDiagnosis(d.sequence, d.code, lookup(d.code)) for d in ordered)
    valid = tuple(d for d in diagnoses if d.info.valid)
    traits = sets = 0
    for diagnosis in valid:
        traits |= diagnosis.info.traits
        sets |= diagnosis.info.memberships
    first = diagnoses[0] if diagnoses[0].info.valid else None
    billed = (
        tuple(
            ClaimProcedure(p.line, p.code, p.units, cpt.lookup(p.code))
            for p in sorted(event.procedures, key=_line)
        )
        if event.procedures
        else ()
    )
    # Inpatient facility claims carry ICD-10-PCS, not CPT, so the catalogue applies its
    # CPT rules (and the CPT branches of MET-013 and MET-015) to outpatient and
    # professional claims only: CPT codes on an inpatient claim are reported, not judged.
    procedures = () if event.setting == "inpatient" else billed
    context = event.context
    return Claim(
        setting=event.setting,
        date_of_service=event.date_of_service,
        reason_for_encounter=context.reason_for_encounter if context else None,
        treatment_directed_at=context.treatment_directed_at if context else None,
        primary_status=context.primary_status if context else None,
        tnm=context.tnm if context else None,
        diagnoses=diagnoses,
        valid=valid,
        first=first,
        traits=traits,
        memberships=sets,
        procedures=procedures,
        procedure_codes=frozenset(p.code for p in procedures),
        billed_procedures=billed,
    )
