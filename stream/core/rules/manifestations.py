"""MET-017, MET-019, MET-021 and MET-022: codes for what a neoplasm causes (manifestations,
pathological fracture, pain, cachexia) need the neoplasm coded, and mostly follow it."""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, Problems, any_of, codes_of, hit, rule
from stream.core.rules.code_lists import (
    FRACTURE_IN_NEOPLASM,
    MALIGNANT_ASCITES,
    MALIGNANT_PERICARDIAL_EFFUSION,
    MALIGNANT_PLEURAL_EFFUSION,
    SECONDARY_BONE,
)

CACHEXIA = CodeSet("E88.A")
"""Wasting disease (syndrome) due to underlying condition: cancer cachexia."""
CACHEXIA_NOS = CodeSet("R64")
NEEDS_NEOPLASM = (
    MALIGNANT_PLEURAL_EFFUSION
    | MALIGNANT_PERICARDIAL_EFFUSION
    | CodeSet("D63.0 R53.0 G13.0 G13.1 G73.1 M36.0 M36.1 M90.6-")
)
"""Manifestations of a neoplasm whose 'code first' note names the neoplasm."""
MANIFESTATIONS = NEEDS_NEOPLASM | MALIGNANT_ASCITES | CACHEXIA
NOT_UNDERLYING = CACHEXIA | CACHEXIA_NOS
"""Codes that cannot be the condition underlying cachexia."""


@rule(
    "MET-017",
    title="Manifestation / 'code first' codes need their underlying neoplasm and must not lead",
    severity="error",
    citation="ICD-10-CM Tabular 'code first' notes; CMS Medicare Code Editor (manifestation as principal); Official Guidelines I.C.2.c.1",
    carc="16",
    rarc="MA63",
    applies_to=MANIFESTATIONS,
)
def met017_manifestation_codes(claim: Claim) -> Hit | None:
    """Manifestation codes follow the condition that causes them, and need it coded.

    ## What it checks
    The manifestation codes are {MANIFESTATIONS}. Any of them first-listed is an error.
    Any of {NEEDS_NEOPLASM} without a neoplasm ({Trait.NEOPLASM}) is an error;
    {MALIGNANT_ASCITES} (malignant ascites) without a malignancy ({Trait.MALIGNANCY}) is an
    error; {CACHEXIA} (cachexia due to an underlying condition) without an underlying
    condition (a code outside chapter 21's Z codes other than {NOT_UNDERLYING}) is an error.
    The rule checks that some neoplasm is present, not the one a note names.

    ## Why
    These codes carry a 'code first' note for the underlying condition, so they never lead
    (the Medicare Code Editor lists several as unacceptable principal diagnoses:
    manifestation as principal), and the condition they follow must be on the claim
    (Tabular notes; I.C.2.c.1 for anaemia in neoplastic disease).
    """
    manifestations = claim.in_set(MANIFESTATIONS)
    if not manifestations:
        return None
    problems = Problems()
    first = claim.first
    if first is not None and claim.first_in(MANIFESTATIONS):
        problems.add(f"{first.code} is a manifestation code and cannot be first-listed", [first])
    orphans = [d for d in manifestations if d.code in NEEDS_NEOPLASM]
    if orphans and not claim.has(Trait.NEOPLASM):
        problems.add(f"{codes_of(orphans)} needs the underlying neoplasm coded", orphans)
    ascites = claim.in_set(MALIGNANT_ASCITES)
    if ascites and not claim.has(Trait.MALIGNANCY):
        problems.add(f"{MALIGNANT_ASCITES} (malignant ascites) needs the malignancy coded", ascites)
    cachexia = claim.in_set(CACHEXIA)
    if cachexia and not any(
        d.info.traits & Trait.NOT_Z and d.code not in NOT_UNDERLYING for d in claim.valid
    ):
        problems.add(
            f"{CACHEXIA} (cachexia due to underlying condition) needs the condition coded",
            cachexia,
        )
    return problems.hit("error")


@rule(
    "MET-019",
    title="Pathological fracture in neoplastic disease (M84.5-) requires the neoplasm code",
    severity="error",
    citation="ICD-10-CM Tabular M84.5 'code also underlying neoplasm'; Official Guidelines I.C.2.l.6",
    carc="16",
    rarc="M76",
    applies_to=FRACTURE_IN_NEOPLASM,
)
def met019_pathological_fracture_needs_neoplasm(claim: Claim) -> Hit | None:
    """A pathological fracture in neoplastic disease needs the neoplasm that caused it coded too.

    ## What it checks
    {FRACTURE_IN_NEOPLASM} without a neoplasm code ({Trait.NEOPLASM}) is an error. The
    order of the codes is not checked.

    ## Why
    The Tabular at M84.5 says code also the underlying neoplasm. Sequencing follows the
    focus of treatment (I.C.2.l.6: the fracture first when it is the focus, the neoplasm
    otherwise), so it is not a rule. Bone metastasis is {SECONDARY_BONE}.
    """
    fractures = claim.in_set(FRACTURE_IN_NEOPLASM)
    if not fractures or claim.has(Trait.NEOPLASM):
        return None
    return hit(
        "error",
        f"{codes_of(fractures)} (pathological fracture in neoplastic disease) without the "
        f"neoplasm: code the underlying neoplasm (for bone metastasis, {SECONDARY_BONE})",
        diagnoses=fractures,
    )


NEOPLASM_PAIN = CodeSet("G89.3")
PAIN_CONTROL_WORDS = (
    "pain control",
    "pain management",
    "pain crisis",
    "intractable pain",
    "uncontrolled pain",
)
_PAIN_CONTROL = any_of(PAIN_CONTROL_WORDS, whole_words=False)


@rule(
    "MET-021",
    title="Neoplasm-related pain G89.3 requires a neoplasm; first-listed only for pain-control encounters",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.6.b.5 (via I.C.2.h); Tabular G89.3",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=NEOPLASM_PAIN,
)
def met021_neoplasm_pain(claim: Claim) -> Hit | None:
    """Neoplasm-related pain needs a neoplasm, and leads only when the encounter is for pain control.

    ## What it checks
    {NEOPLASM_PAIN} without a neoplasm ({Trait.NEOPLASM}) is an error. {NEOPLASM_PAIN}
    first-listed when the reason for the encounter mentions none of {PAIN_CONTROL_WORDS}
    is a warning; an absent reason does not fire it.

    ## Why
    G89.3 is assigned when the pain is documented as related to a neoplasm, and is
    principal or first-listed when the encounter is for pain control or management;
    otherwise the neoplasm leads (I.C.6.b.5, via I.C.2.h). Reading the reason is a
    free-text heuristic, so that branch is never an error.
    """
    pain = claim.in_set(NEOPLASM_PAIN)
    if not pain:
        return None
    if not claim.has(Trait.NEOPLASM):
        return hit(
            "error",
            f"{NEOPLASM_PAIN} (neoplasm related pain) without a neoplasm: code the neoplasm",
            diagnoses=pain,
        )
    reason = claim.reason_for_encounter
    if claim.first_in(NEOPLASM_PAIN) and reason is not None and not _PAIN_CONTROL.search(reason):
        return hit(
            "warning",
            f"{NEOPLASM_PAIN} is first-listed but the reason for the encounter does not say "
            "it is for pain control or management",
            diagnoses=pain,
        )
    return None


@rule(
    "MET-022",
    title="Cancer cachexia is E88.A; R64 is cachexia NOS",
    severity="error",
    citation="ICD-10-CM Tabular (April 2026): R64 Excludes1 E88.A; E88.A Excludes1 R64",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=CACHEXIA_NOS,
)
def met022_cancer_cachexia(claim: Claim) -> Hit | None:
    """Cachexia NOS and cachexia due to an underlying condition exclude each other.

    ## What it checks
    {CACHEXIA_NOS} with {CACHEXIA} is an error. {CACHEXIA_NOS} with a malignancy
    ({Trait.MALIGNANCY}) and no {CACHEXIA} is a warning.

    ## Why
    R64 and E88.A carry Excludes1 notes naming each other, and cancer cachexia is E88.A
    (whose 'code first' note MET-017 enforces). In the April 2026 set R64 itself has no
    'code first' note: the common shorthand that it has is outdated.
    """
    nos = claim.in_set(CACHEXIA_NOS)
    if not nos:
        return None
    due_to = claim.in_set(CACHEXIA)
    if due_to:
        return hit(
            "error",
            f"{CACHEXIA_NOS} (cachexia) and {CACHEXIA} (cachexia due to underlying condition) "
            f"exclude each other: keep {CACHEXIA} for cancer cachexia",
            diagnoses=nos + due_to,
        )
    if claim.has(Trait.MALIGNANCY):
        return hit(
            "warning",
            f"{CACHEXIA_NOS} (cachexia NOS) beside a malignancy: cancer cachexia is coded {CACHEXIA}",
            diagnoses=nos,
        )
    return None
