"""MET-025 to MET-029: side, overlapping sites, uncertain diagnoses and stage consistency."""

from __future__ import annotations

import re

from stream.core.claim import Claim, ClaimDiagnosis, Fact
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import TRAIT_CODES, Trait
from stream.core.rules.base import Hit, Problems, any_of, codes_of, current_malignancies, hit, rule

SIDE_WORDS = ("right", "left", "bilateral")
_SIDE_IN_TEXT = any_of(SIDE_WORDS)


@rule(
    "MET-025",
    title="Laterality: do not use an unspecified-side code when side is documented, or mix unspecified and specified side codes",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.B.13, I.B.3",
    carc="16",
    rarc="M81",
)
def met025_laterality(claim: Claim) -> Hit | None:
    """Use the right or left code when the documentation gives the side.

    ## What it checks
    (a) A code whose official description says 'unspecified' lung, kidney, ovary, adrenal
    gland, breast, testis, eye, ear, fallopian tube, ureter or renal pelvis, on a claim whose
    reason for the encounter says {SIDE_WORDS}, warns. (b) An unspecified-side code beside a
    specified-side code of the same subcategory (C78.00 with C78.01, C40.00 with C40.01)
    warns. An unspecified-side code is one whose sibling codes name the side where it says
    'unspecified'; so (b) covers limbs and eyelids as well as the organs of (a).

    ## Why
    When the documentation gives the side, the code for that side is reported (I.B.13), and
    an unspecified code beside a specified one of the same site is less specific than the
    record (I.B.3). (a) reads free text, a heuristic, so the rule only warns.
    """
    unspecified = [d for d in claim.valid if d.info.unspecified_paired_organ]
    reason = claim.reason_for_encounter
    if unspecified and reason is not None and _SIDE_IN_TEXT.search(reason):
        return hit(
            "warning",
            f"{codes_of(unspecified)} has an unspecified side, but the reason for the "
            "encounter documents one: use the right, left or bilateral code",
            diagnoses=unspecified,
        )
    mixed: list[ClaimDiagnosis] = []
    for diagnosis in claim.valid:
        family = diagnosis.info.parent
        if not diagnosis.info.unspecified_side or not family:
            continue
        # The specified-side codes anywhere below the same subcategory: C43.10 (unspecified
        # eyelid) and C43.111 (right upper eyelid) both belong to C43.1.
        sided = [d for d in claim.valid if d.info.side_specified and d.code.startswith(family)]
        if sided:
            mixed += [diagnosis, *sided]
    if not mixed:
        return None
    return hit(
        "warning",
        f"{codes_of(mixed)}: an unspecified-side code beside a specified-side code of the "
        "same subcategory; keep the specified one",
        diagnoses=mixed,
    )


OVERLAP_CANDIDATES = CodeSet("C00-C75 !C43 !C44 !C4A !C50")
"""Primary sites whose subsites have an overlapping-lesion code (.8), other than those
where separate lesions are common (melanoma, other skin, Merkel cell, breast)."""


@rule(
    "MET-026",
    title='Contiguous subsites of one primary should be reviewed for the ".8" overlapping-lesion code',
    severity="warning",
    citation="ICD-10-CM Tabular chapter 2 note 'primary malignant neoplasms overlapping site boundaries'",
    carc="16",
    rarc="M81",
    applies_to=OVERLAP_CANDIDATES,
)
def met026_overlapping_subsites(claim: Claim) -> Hit | None:
    """One tumour overlapping contiguous subsites is coded to .8, not to each subsite.

    ## What it checks
    Fires when codes of one primary category of {OVERLAP_CANDIDATES} carry at least two
    different fourth characters other than 8 and 9.

    ## Why
    A primary malignancy that overlaps two or more contiguous sites is coded to the
    overlapping-lesion subcategory .8 (Tabular chapter 2 note). Separate, non-contiguous
    tumours of one site are coded separately, so the claim is reviewed, not rejected; skin,
    melanoma, Merkel cell and breast are left out because separate lesions are common there.
    Direct extension into another organ is correctly a secondary of that organ and is never
    rejected.
    """
    candidates = claim.in_set(OVERLAP_CANDIDATES)
    if len(candidates) < 2:  # one code has no subsite beside it
        return None
    subsites: dict[str, dict[str, ClaimDiagnosis]] = {}
    for diagnosis in candidates:
        code = diagnosis.code
        if len(code) > 4 and code[4] not in "89":
            subsites.setdefault(code[:3], {}).setdefault(code[4], diagnosis)
    overlapping = [d for found in subsites.values() if len(found) > 1 for d in found.values()]
    if not overlapping:
        return None
    return hit(
        "warning",
        f"{codes_of(overlapping)}: several subsites of one primary site; when one tumour "
        "overlaps them, code the overlapping-sites code (.8)",
        diagnoses=overlapping,
    )


UNCERTAIN_WORDS = (
    "suspected",
    "suspicious for",
    "suspicion of",
    "probable",
    "possible",
    "likely",
    "questionable",
    "rule out",
    "r/o",
    "concern for",
    "consistent with",
    "compatible with",
    "working diagnosis",
)
_UNCERTAINTY = any_of(UNCERTAIN_WORDS)
METASTATIC = CodeSet("C77-C79 C7B C80")


@rule(
    "MET-027",
    title="Outpatient/professional claims must not code uncertain metastases as confirmed",
    severity="warning",
    citation="ICD-10-CM Official Guidelines IV.H (versus II.H for inpatient)",
    carc="16",
    rarc="M76",
    applies_to=METASTATIC,
    needs=Fact.REASON | Fact.NOT_INPATIENT,
)
def met027_uncertain_metastasis(claim: Claim) -> Hit | None:
    """Outside inpatient care, a suspected or probable metastasis is coded by its findings.

    ## What it checks
    Fires on outpatient and professional claims whose reason for the encounter uses uncertain
    wording ({UNCERTAIN_WORDS}) while a code of {METASTATIC} is on the claim.

    ## Why
    Outpatient and professional coding does not code a diagnosis documented as probable,
    suspected or to be ruled out as if it existed; it codes the signs, symptoms or findings
    (IV.H). Inpatient claims may code an uncertain diagnosis documented at discharge as
    established (II.H). Reading the reason is a free-text heuristic, so a warning only.
    """
    if claim.setting == "inpatient" or claim.reason_for_encounter is None:
        return None
    metastatic = claim.in_set(METASTATIC)
    if not metastatic:
        return None
    wording = _UNCERTAINTY.search(claim.reason_for_encounter)
    if wording is None:
        return None
    return hit(
        "warning",
        f"the reason for the encounter is uncertain ('{wording.group(1).lower()}') but "
        f"{codes_of(metastatic)} is coded as confirmed: code the signs or findings instead",
        diagnoses=metastatic,
    )


_N_CATEGORY = re.compile(r"N([0-3X])")
_M_CATEGORY = re.compile(r"M([01X])")


def tnm_categories(tnm: str) -> tuple[str | None, str | None]:
    """The N and M categories of a free-text TNM: `cT2 N1 M1a` gives ('1', '1')."""
    text = tnm.upper()
    n = _N_CATEGORY.search(text)
    m = _M_CATEGORY.search(text)
    return (n.group(1) if n else None, m.group(1) if m else None)


@rule(
    "MET-028",
    title="TNM M1 documented for a current malignancy but no distant-metastasis code",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2 (introduction: determine and code secondary sites)",
    carc="16",
    rarc="M76",
    needs=Fact.TNM,
)
def met028_m1_without_distant_code(claim: Claim) -> Hit | None:
    """If stage M1 is documented for a current malignancy, code the distant site.

    ## What it checks
    Fires when the TNM reads M1 (M1a-c included), the claim has no distant evidence
    ({Trait.DISTANT_EVIDENCE}: a malignant effusion can carry the M1 alone) and it carries a
    current malignancy ({Trait.MALIGNANCY} other than {Trait.TRANSPLANT_MALIGNANCY}). Not
    evaluated when a lymphoid or haematopoietic code ({Trait.HEME_PRIMARY}) is present.

    ## Why
    The secondary sites of a malignancy are determined and coded (I.C.2); a TNM stage is not
    coded itself, so this is a derived consistency edit and a warning only. Surveillance
    claims are left out because their TNM is often the stage at diagnosis.
    """
    if claim.tnm is None or claim.has(Trait.HEME_PRIMARY):
        return None
    _, m = tnm_categories(claim.tnm)
    if m != "1" or claim.has(Trait.DISTANT_EVIDENCE):
        return None
    current = current_malignancies(claim)
    if not current:
        return None
    return hit(
        "warning",
        f"the TNM documents distant metastasis (M1) for {codes_of(current)} but no distant "
        "site is coded: code the secondary sites",
        diagnoses=current,
    )


DISTANT_CARCINOID_NODES = CodeSet("C7B.01")


@rule(
    "MET-029",
    title="TNM N/M consistency with nodal and distant codes",
    severity="warning",
    citation="ICD-10-CM Alphabetic Index 'Neoplasm, lymph gland, secondary' (C77.-); Official Guidelines I.C.2 (introduction)",
    carc="16",
    rarc="M76",
    needs=Fact.TNM,
)
def met029_tnm_consistency(claim: Claim) -> Hit | None:
    """The N category and M0 should agree with the nodal and distant codes.

    ## What it checks
    (a) N1-N3 with no nodal secondary ({Trait.NODAL_SECONDARY}, nor
    {DISTANT_CARCINOID_NODES}) warns; (b) N0 with a nodal secondary warns; (c) M0 with
    distant evidence ({Trait.DISTANT_EVIDENCE}) warns. Skipped when a lymphoid or
    haematopoietic code ({Trait.HEME_PRIMARY}) is present. Unlike MET-028 it also runs on
    claims without a current malignancy: a surveillance claim carrying N1 with no C77 warns.

    ## Why
    Nodal involvement is coded C77.- (Alphabetic Index 'Neoplasm, lymph gland, secondary')
    and distant sites C78-C79 (I.C.2); a TNM that disagrees with the codes means one of them
    is wrong. A derived consistency edit, so a warning only.
    """
    if claim.tnm is None or claim.has(Trait.HEME_PRIMARY):
        return None
    n, m = tnm_categories(claim.tnm)
    nodes = claim.with_traits(Trait.NODAL_SECONDARY)
    problems = Problems()
    if n in ("1", "2", "3") and not nodes and not claim.any_in(DISTANT_CARCINOID_NODES):
        problems.add(
            f"N{n} documents nodal metastasis but no {TRAIT_CODES[Trait.NODAL_SECONDARY]} "
            "code is on the claim"
        )
    if n == "0" and nodes:
        problems.add(f"N0 documents no nodal metastasis but {codes_of(nodes)} is coded", nodes)
    distant = claim.with_traits(Trait.DISTANT_EVIDENCE)
    if m == "0" and distant:
        problems.add(
            f"M0 documents no distant metastasis but {codes_of(distant)} is coded", distant
        )
    return problems.hit("warning", "TNM: {}")
