"""MET-015, MET-020 and MET-035: encounters for chemotherapy, immunotherapy, radiation and
palliative care (Z51), and what must come with them."""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import Trait
from stream.core.contracts import Severity
from stream.core.rules.base import Hit, codes_of, hit, rule
from stream.core.rules.code_lists import PALLIATIVE_CARE, RADIATION_ENCOUNTER, THERAPY_ENCOUNTER

SURGERY = ProcedureCodes("10021-35999 37000-69990")
"""All-digit CPT 10021-69990 other than 36000-36999 (vascular access)."""


@rule(
    "MET-015",
    title="Encounters for chemotherapy, immunotherapy or external-beam radiation: Z51.0/Z51.1- first-listed with the neoplasm coded, unless surgery is in the same episode",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.e.1, I.C.2.e.2, I.C.21.c.16",
    carc="16",
    rarc="MA63",
    warning_branches=True,
    applies_to=THERAPY_ENCOUNTER,
)
def met015_therapy_encounter(claim: Claim) -> Hit | None:
    """Antineoplastic therapy encounters lead with their Z51 code and code the neoplasm.

    ## What it checks
    Applies when a code of {THERAPY_ENCOUNTER} is on the claim. (a) No neoplasm code
    ({Trait.NEOPLASM}, other than {Trait.TRANSPLANT_MALIGNANCY}) is an error. (b) A
    first-listed code outside {THERAPY_ENCOUNTER} with no surgical procedure on the claim
    is an error, and a warning on an inpatient claim. (c) A first-listed therapy code with
    a surgical procedure on an outpatient or professional claim is a warning. A surgical
    procedure is a CPT code of {SURGERY} (10021-69990 without vascular access). An invalid
    first-listed code is MET-001's alone: (b) and (c) then do not apply. Brachytherapy is
    MET-035.

    ## Why
    When the encounter is solely for chemotherapy, immunotherapy or external-beam
    radiation, the Z51 code leads and the neoplasm follows (I.C.2.e.2, I.C.21.c.16). Any
    neoplasm counts: therapy for myelodysplastic syndrome, meningioma or a desmoid tumour
    is correct coding. When the episode includes surgical removal of the neoplasm, the
    neoplasm leads instead (I.C.2.e.1). Inpatient claims carry no CPT, so a same-stay
    operation cannot be seen there (a warning; a surgical CPT code billed on one still
    exempts it).
    """
    therapy = claim.in_set(THERAPY_ENCOUNTER)
    if not therapy:
        return None
    neoplasms = [
        d
        for d in claim.with_traits(Trait.NEOPLASM)
        if not d.info.traits & Trait.TRANSPLANT_MALIGNANCY
    ]
    if not neoplasms:
        return hit(
            "error",
            f"{codes_of(therapy)} (antineoplastic therapy encounter) without the neoplasm "
            "treated: code the neoplasm as an additional diagnosis",
            diagnoses=therapy,
        )
    first = claim.first
    if first is None:
        return None
    surgery = claim.procedures_in(SURGERY)
    leads = first.code in THERAPY_ENCOUNTER
    if not leads and not surgery and not claim.evidence_in(SURGERY):
        severity: Severity = "warning" if claim.setting == "inpatient" else "error"
        return hit(
            severity,
            f"{codes_of(therapy)} (antineoplastic therapy encounter) is not first-listed: "
            f"sequence it before {first.code}",
            diagnoses=[first, *therapy],
        )
    if leads and surgery:
        return hit(
            "warning",
            f"{first.code} leads an episode that includes surgery "
            f"({codes_of(surgery)}): the neoplasm should lead (I.C.2.e.1)",
            diagnoses=[first],
            procedures=surgery,
        )
    return None


@rule(
    "MET-020",
    title="Palliative care Z51.5 needs the condition requiring care; inpatient principal Z51.5 is flagged",
    severity="error",
    citation="ICD-10-CM Tabular Z51 'code also condition requiring care'; AHA Coding Clinic 1Q2017 pp. 48-49",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=PALLIATIVE_CARE,
)
def met020_palliative_care(claim: Claim) -> Hit | None:
    """Palliative care may lead when it is the documented reason, but never stands alone.

    ## What it checks
    {PALLIATIVE_CARE} with no diagnosis outside chapter 21 (no code other than a Z code)
    is an error. {PALLIATIVE_CARE} as the principal diagnosis of an inpatient claim is a
    warning.

    ## Why
    The Tabular at Z51 says code also the condition requiring care. Z51.5 may be principal
    or first-listed when palliative care is the documented reason (Coding Clinic 1Q2017
    pp. 48-49), and it is not on the Medicare Code Editor's unacceptable-principal list,
    but it is typically not the reason for an admission: a warning there.
    """
    palliative = claim.in_set(PALLIATIVE_CARE)
    if not palliative:
        return None
    if not claim.has(Trait.NOT_Z):
        return hit(
            "error",
            f"{PALLIATIVE_CARE} (palliative care) without the condition requiring care: "
            "code the condition",
            diagnoses=palliative,
        )
    if claim.setting == "inpatient" and claim.first_in(PALLIATIVE_CARE):
        return hit(
            "warning",
            f"{PALLIATIVE_CARE} (palliative care) is the inpatient principal diagnosis: it "
            "typically follows the condition that occasioned the admission",
            diagnoses=palliative,
        )
    return None


BRACHYTHERAPY = ProcedureCodes("77750 77761-77763 77767 77768 77770-77772 77778 77789")


@rule(
    "MET-035",
    title="Brachytherapy encounters do not use Z51.0",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.e.2",
    carc="16",
    rarc="M76",
    applies_to=RADIATION_ENCOUNTER,
)
def met035_brachytherapy(claim: Claim) -> Hit | None:
    """For implanted radioactive elements the malignancy leads and Z51.0 is not assigned.

    ## What it checks
    {RADIATION_ENCOUNTER} with a brachytherapy procedure ({BRACHYTHERAPY}) is an error.

    ## Why
    I.C.2.e.2: Z51.0 is for encounters for external-beam radiation (MET-015); when the
    treatment is the implantation of radioactive elements, the malignancy is sequenced
    first and Z51.0 is not assigned. Inpatient claims carry no CPT, so the rule concerns
    outpatient and professional claims.
    """
    radiation = claim.in_set(RADIATION_ENCOUNTER)
    brachytherapy = claim.procedures_in(BRACHYTHERAPY)
    if not radiation or not brachytherapy:
        return None
    return hit(
        "error",
        f"{RADIATION_ENCOUNTER} with brachytherapy ({codes_of(brachytherapy)}): sequence "
        f"the malignancy first and do not assign {RADIATION_ENCOUNTER}",
        diagnoses=radiation,
        procedures=brachytherapy,
    )
