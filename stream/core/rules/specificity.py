"""MET-025 to MET-029: side, overlapping sites, uncertain diagnoses and stage consistency."""

from __future__ import annotations

import re

from stream.core.claim import Claim, ClaimDiagnosis
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, codes_of, hit, rule

_SIDE_IN_TEXT = re.compile(r"\b(right|left|bilateral)\b", re.IGNORECASE)


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

    (a) A code whose official description says 'unspecified' lung, kidney, ovary, adrenal
    gland, breast, testis, eye, ear, fallopian tube, ureter or renal pelvis, on a claim
    whose reason for the encounter says right, left or bilateral, warns. (b) An
    unspecified-side code beside a specified-side code of the same subcategory (C78.00
    with C78.01, C40.00 with C40.01) warns. An unspecified-side code is one whose
    sibling codes name the side where it says 'unspecified'; so (b) covers limbs and
    eyelids as well as the organs of (a). (a) is a free-text heuristic, so a warning only.

    Example that warns: C64.2, C78.00 with the reason "right lower lobe metastasis from
    left renal cell carcinoma". Passes: C64.2, C78.01 with the same reason.
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


_OVERLAP_CANDIDATES = CodeSet("C00-C75 !C43 !C44 !C4A !C50")


@rule(
    "MET-026",
    title='Contiguous subsites of one primary should be reviewed for the ".8" overlapping-lesion code',
    severity="warning",
    citation="ICD-10-CM Tabular chapter 2 note 'primary malignant neoplasms overlapping site boundaries'",
    carc="16",
    rarc="M81",
    applies_to=_OVERLAP_CANDIDATES,
)
def met026_overlapping_subsites(claim: Claim) -> Hit | None:
    """One tumour overlapping contiguous subsites is coded to .8, not to each subsite.

    Fires when codes of one primary category (C00-C75 other than C43, C44, C4A and C50,
    whose separate lesions are common) carry at least two different fourth characters
    other than 8 and 9. Non-contiguous tumours of one site are coded separately, hence a
    warning. Direct extension into another organ is correctly a secondary of that organ
    and is never rejected.

    Example that warns: C18.2, C18.3. Passes: C18.8.
    """
    subsites: dict[str, dict[str, ClaimDiagnosis]] = {}
    for diagnosis in claim.in_set(_OVERLAP_CANDIDATES):
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


_UNCERTAINTY = re.compile(
    r"\b(suspected|suspicious for|suspicion of|probable|possible|likely|questionable|rule out"
    r"|r/o|concern for|consistent with|compatible with|working diagnosis)\b",
    re.IGNORECASE,
)
_METASTATIC = CodeSet("C77-C79 C7B C80")


@rule(
    "MET-027",
    title="Outpatient/professional claims must not code uncertain metastases as confirmed",
    severity="warning",
    citation="ICD-10-CM Official Guidelines IV.H (versus II.H for inpatient)",
    carc="16",
    rarc="M76",
    applies_to=_METASTATIC,
)
def met027_uncertain_metastasis(claim: Claim) -> Hit | None:
    """Outside inpatient care, a suspected or probable metastasis is coded by its findings.

    Fires on outpatient and professional claims whose reason for the encounter uses
    uncertain wording (suspected, suspicious for, probable, possible, likely,
    questionable, rule out, r/o, concern for, consistent with, compatible with, working
    diagnosis) while a C77-C79, C7B or C80 code is on the claim. Inpatient claims may code
    an uncertain diagnosis documented at discharge as established (II.H). A free-text
    heuristic, so a warning only.

    Example that warns: C18.7, C78.7 for "CT to rule out liver metastases". Passes:
    C18.7, R93.2 for the same reason.
    """
    if claim.setting == "inpatient" or claim.reason_for_encounter is None:
        return None
    metastatic = claim.in_set(_METASTATIC)
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
)
def met028_m1_without_distant_code(claim: Claim) -> Hit | None:
    """If stage M1 is documented for a current malignancy, code the distant site.

    Fires when the TNM reads M1 (M1a-c included), the claim has no distant evidence
    (C78, C79, C7B, C80.0, or a malignant effusion J91.0, I31.31, R18.0, which can carry
    the M1 alone) and it carries a current malignancy (any malignancy other than C80.2).
    Not evaluated when a lymphoid or haematopoietic code (C81-C96) is present. A derived
    consistency edit, so a warning only; surveillance claims are skipped because the
    TNM is often the stage at diagnosis.

    Example that warns: TNM T3N0M1 with C18.7 alone. Passes: TNM T2aN0M1a with C34.32,
    J91.0.
    """
    if claim.tnm is None or claim.has(Trait.HEME_PRIMARY):
        return None
    _, m = tnm_categories(claim.tnm)
    if m != "1" or claim.has(Trait.DISTANT_EVIDENCE):
        return None
    current = [
        d
        for d in claim.with_traits(Trait.MALIGNANCY)
        if not d.info.traits & Trait.TRANSPLANT_MALIGNANCY
    ]
    if not current:
        return None
    return hit(
        "warning",
        f"the TNM documents distant metastasis (M1) for {codes_of(current)} but no distant "
        "site is coded: code the secondary sites",
        diagnoses=current,
    )


_DISTANT_NODES = CodeSet("C7B.01")


@rule(
    "MET-029",
    title="TNM N/M consistency with nodal and distant codes",
    severity="warning",
    citation="ICD-10-CM Alphabetic Index 'Neoplasm, lymph gland, secondary' (C77.-); Official Guidelines I.C.2 (introduction)",
    carc="16",
    rarc="M76",
)
def met029_tnm_consistency(claim: Claim) -> Hit | None:
    """The N category and M0 should agree with the C77, C78 and C79 codes.

    (a) N1-N3 with no C77 (and no C7B.01) warns; (b) N0 with a C77 code warns; (c) M0
    with distant evidence (C78, C79, C7B, C80.0, J91.0, I31.31, R18.0) warns. Skipped
    when a C81-C96 code is present. Unlike MET-028 it also runs on claims without a
    current malignancy: a surveillance claim carrying N1 with no C77 warns.

    Example that warns: TNM T1N1M0 with C50.412 alone. Passes: C50.412, C77.3.
    """
    if claim.tnm is None or claim.has(Trait.HEME_PRIMARY):
        return None
    n, m = tnm_categories(claim.tnm)
    nodes = claim.with_traits(Trait.NODAL_SECONDARY)
    problems: list[str] = []
    involved: list[ClaimDiagnosis] = []
    if n in ("1", "2", "3") and not nodes and not claim.in_set(_DISTANT_NODES):
        problems.append(f"N{n} documents nodal metastasis but no C77 code is on the claim")
    if n == "0" and nodes:
        problems.append(f"N0 documents no nodal metastasis but {codes_of(nodes)} is coded")
        involved += nodes
    distant = claim.with_traits(Trait.DISTANT_EVIDENCE)
    if m == "0" and distant:
        problems.append(f"M0 documents no distant metastasis but {codes_of(distant)} is coded")
        involved += distant
    if not problems:
        return None
    return hit("warning", f"TNM: {'; '.join(problems)}", diagnoses=involved)
