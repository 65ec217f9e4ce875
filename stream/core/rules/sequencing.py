"""MET-013, MET-014, MET-018 and MET-034: which code leads the claim."""

from __future__ import annotations

from stream.core.claim import Claim, Fact
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, Problems, codes_of, current_malignancies, hit, rule
from stream.core.rules.code_lists import MALIGNANT_ASCITES, MALIGNANT_EFFUSIONS

EFFUSION_DRAINAGE = ProcedureCodes("49082 49083 32554-32557")
"""Paracentesis and thoracentesis: the procedures of the encounters of I.C.2.f."""


@rule(
    "MET-013",
    title="Treatment directed at the metastasis only: a solid primary must not be first-listed (I.C.2.f encounters exempt)",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.b, I.C.2.l.2 (exemption I.C.2.f)",
    carc="16",
    rarc="MA63",
    applies_to=Trait.SOLID_PRIMARY,
    needs=Fact.TREATMENT_TARGET,
)
def met013_secondary_treatment_sequencing(claim: Claim) -> Hit | None:
    """When treatment is directed at the secondary site only, the secondary leads.

    ## What it checks
    Fires when `treatment_directed_at` is 'secondary', the first-listed code is a solid
    primary ({Trait.SOLID_PRIMARY}), the claim has a secondary ({Trait.SECONDARY},
    {Trait.SECONDARY_NET}), and the encounter is not one of I.C.2.f: no paracentesis or
    thoracentesis ({EFFUSION_DRAINAGE}) and no malignant effusion ({MALIGNANT_EFFUSIONS}). The
    procedure proves the exemption on an inpatient claim too: a CPT code there never fails a
    claim but counts as evidence. A first-listed lymphoid or haematopoietic code (which has no
    secondary code), a C80 code, or any other lead code (Z51.-, G89.3, M84.5-, dehydration)
    does not fire it.

    ## Why
    The secondary site is principal or first-listed whenever treatment is directed at it
    alone, even though the primary is still present (I.C.2.b, I.C.2.l.2): the primary need
    not have been removed. Encounters to determine the extent of disease, or for a
    paracentesis or thoracentesis, may lead with either site (I.C.2.f).
    """
    first = claim.first_with(Trait.SOLID_PRIMARY)
    if claim.treatment_directed_at != "secondary" or first is None:
        return None
    secondaries = claim.with_traits(Trait.SECONDARY | Trait.SECONDARY_NET)
    if not secondaries:
        return None
    if claim.evidence_in(EFFUSION_DRAINAGE) or claim.in_set(MALIGNANT_EFFUSIONS):
        return None
    return hit(
        "error",
        f"treatment is directed at the secondary site only, but the primary {first.code} is "
        f"first-listed: sequence {codes_of(secondaries)} first",
        diagnoses=[first, *secondaries],
    )


@rule(
    "MET-014",
    title="Treatment directed at the primary: a secondary code must not be first-listed",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.a, I.C.2.l.1",
    carc="16",
    rarc="MA63",
    warning_branches=True,
    applies_to=Trait.SECONDARY | Trait.SECONDARY_NET,
    needs=Fact.TREATMENT_TARGET,
)
def met014_primary_treatment_sequencing(claim: Claim) -> Hit | None:
    """When the primary site is the target of treatment, the primary leads.

    ## What it checks
    `treatment_directed_at` 'primary' with a first-listed secondary ({Trait.SECONDARY},
    {Trait.SECONDARY_NET}) is an error; 'both' with a first-listed secondary is a warning.
    Unlike MET-013 this rule has no I.C.2.f exemption.

    ## Why
    When treatment is directed at the primary malignancy, the primary is principal or
    first-listed (I.C.2.a, I.C.2.l.1). When it is directed at both, the record decides which
    leads, so the claim is reviewed.
    """
    target = claim.treatment_directed_at
    first = claim.first_with(Trait.SECONDARY | Trait.SECONDARY_NET)
    if target not in ("primary", "both") or first is None:
        return None
    if target == "primary":
        return hit(
            "error",
            f"treatment is directed at the primary, but the secondary {first.code} is "
            "first-listed: sequence the primary first",
            diagnoses=[first],
        )
    return hit(
        "warning",
        f"treatment is directed at primary and secondary, and the secondary {first.code} is "
        "first-listed: review the sequencing",
        diagnoses=[first],
    )


@rule(
    "MET-018",
    title="Symptom codes (Chapter 18) should not replace the malignancy as first-listed",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2.g",
    carc="16",
    rarc="MA63",
    applies_to=Trait.SYMPTOM,
)
def met018_symptom_first(claim: Claim) -> Hit | None:
    """A sign or symptom of a known malignancy is not principal or first-listed.

    ## What it checks
    Fires when the first-listed code is a symptom ({Trait.SYMPTOM}) other than
    {MALIGNANT_ASCITES}, which is MET-017's, and the claim carries a malignancy
    ({Trait.MALIGNANCY}).

    ## Why
    Symptoms, signs and ill-defined conditions integral to a malignancy are not coded as
    principal when the malignancy is known (I.C.2.g). A warning, because whether the symptom is
    due to the malignancy cannot be read from the claim.
    """
    first = claim.first
    if first is None or not first.info.traits & Trait.SYMPTOM or first.code in MALIGNANT_ASCITES:
        return None
    cancers = claim.with_traits(Trait.MALIGNANCY)
    if not cancers:
        return None
    return hit(
        "warning",
        f"the symptom {first.label} is first-listed beside {codes_of(cancers)}: when the "
        "symptom is due to the malignancy, the malignancy leads",
        diagnoses=[first],
    )


TRANSPLANT_COMPLICATION = CodeSet("T86.-")
TRANSPLANTED_ORGAN_MALIGNANCY = CodeSet("C80.2")


@rule(
    "MET-034",
    title="Malignancy in a transplanted organ: T86.- first, then C80.2, then the specific malignancy",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.r; Tabular C80.2; CMS Medicare Code Editor (unacceptable principal diagnosis)",
    carc="16",
    rarc="MA63",
    applies_to=Trait.TRANSPLANT_MALIGNANCY,
)
def met034_transplanted_organ(claim: Claim) -> Hit | None:
    """A malignancy of a transplanted organ is coded with the transplant complication first, then C80.2, then the malignancy.

    ## What it checks
    {TRANSPLANTED_ORGAN_MALIGNANCY} first-listed, with no {TRANSPLANT_COMPLICATION} code before
    it, or with no other malignancy code is an error.

    ## Why
    The Tabular at C80.2 says code first the complication of the transplanted organ
    ({TRANSPLANT_COMPLICATION}) and use an additional code for the specific malignancy
    (I.C.2.r). C80.2 is on the
    Medicare Code Editor's unacceptable-principal list.
    """
    marker = claim.in_set(TRANSPLANTED_ORGAN_MALIGNANCY)
    if not marker:
        return None
    position = marker[0].sequence
    problems = Problems()
    if position == 1:
        problems.add(f"{TRANSPLANTED_ORGAN_MALIGNANCY} is first-listed")
    if not any(d.sequence < position for d in claim.in_set(TRANSPLANT_COMPLICATION)):
        problems.add(f"no {TRANSPLANT_COMPLICATION} transplant complication precedes it")
    if not current_malignancies(claim):
        problems.add("the specific malignancy is not coded")
    return problems.hit(
        "error",
        f"{TRANSPLANTED_ORGAN_MALIGNANCY} (malignancy of a transplanted organ): {{}}; code "
        f"{TRANSPLANT_COMPLICATION}, then {TRANSPLANTED_ORGAN_MALIGNANCY}, then the specific "
        "malignancy",
        diagnoses=marker,
    )
