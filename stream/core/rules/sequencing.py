"""MET-013 to MET-022, MET-034 and MET-035: what leads the claim, and what must come with it."""

from __future__ import annotations

import re

from stream.core.claim import Claim, ClaimDiagnosis
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import Trait
from stream.core.contracts import Severity
from stream.core.rules.base import Hit, codes_of, hit, rule

_EFFUSION_PROCEDURES = ProcedureCodes("49082 49083 32554 32555 32556 32557")
_EFFUSION_DIAGNOSES = CodeSet("J91.0 R18.0 I31.31")


@rule(
    "MET-013",
    title="Treatment directed at the metastasis only: a solid primary must not be first-listed (I.C.2.f encounters exempt)",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.b, I.C.2.l.2 (exemption I.C.2.f)",
    carc="16",
    rarc="MA63",
    applies_to=Trait.SOLID_PRIMARY,
)
def met013_secondary_treatment_sequencing(claim: Claim) -> Hit | None:
    """When treatment is directed at the secondary site only, the secondary leads.

    Fires when `treatment_directed_at` is 'secondary', the first-listed code is a solid
    primary (C00-C76, C4A, C7A), the claim has a secondary (C77-C79 or C7B), and the
    encounter is not one of I.C.2.f: no paracentesis or thoracentesis procedure (49082,
    49083, 32554-32557) and none of J91.0, R18.0, I31.31. Those encounters may lead with
    either the primary or the metastatic site. The procedure proves the exemption on an
    inpatient claim too: a CPT code there never fails a claim but counts as evidence. A first-listed lymphoid or haematopoietic
    code (which has no secondary code), a C80 code, or any other lead code (Z51.-,
    G89.3, M84.5-, dehydration) does not fire this rule. The primary need not have been
    removed for the secondary to lead.

    Example that fails: treatment at secondary, C18.7, C78.7. Passes: C78.7, C18.7.
    """
    if claim.treatment_directed_at != "secondary" or not claim.first_has(Trait.SOLID_PRIMARY):
        return None
    secondaries = claim.with_traits(Trait.SECONDARY | Trait.SECONDARY_NET)
    if not secondaries:
        return None
    if claim.evidence_in(_EFFUSION_PROCEDURES) or claim.in_set(_EFFUSION_DIAGNOSES):
        return None
    first = claim.first
    assert first is not None
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
)
def met014_primary_treatment_sequencing(claim: Claim) -> Hit | None:
    """When the primary site is the target of treatment, the primary leads.

    `treatment_directed_at` 'primary' with a first-listed secondary (C77-C79 or C7B) is an
    error; 'both' with a first-listed secondary is a warning. Unlike MET-013 this rule
    has no I.C.2.f exemption.

    Example that fails: treatment at primary, C77.1, C34.11. Passes: C34.11, C77.1.
    """
    target = claim.treatment_directed_at
    if target not in ("primary", "both") or not claim.first_has(
        Trait.SECONDARY | Trait.SECONDARY_NET
    ):
        return None
    first = claim.first
    assert first is not None
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


_THERAPY_ENCOUNTER = CodeSet("Z51.0 Z51.11 Z51.12")
_SURGERY = ProcedureCodes("10021-35999 37000-69990")
"""All-digit CPT 10021-69990 other than 36000-36999 (vascular access)."""


@rule(
    "MET-015",
    title="Encounters for chemotherapy, immunotherapy or external-beam radiation: Z51.0/Z51.1- first-listed with the neoplasm coded, unless surgery is in the same episode",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.e.1, I.C.2.e.2, I.C.21.c.16",
    carc="16",
    rarc="MA63",
    warning_branches=True,
    applies_to=_THERAPY_ENCOUNTER,
)
def met015_therapy_encounter(claim: Claim) -> Hit | None:
    """Antineoplastic therapy encounters lead with Z51.0/Z51.11/Z51.12 and code the neoplasm.

    Applies when Z51.0, Z51.11 or Z51.12 is on the claim. (a) No neoplasm code (C00-D49,
    other than C80.2) is an error: any neoplasm counts, since therapy for myelodysplastic
    syndrome, meningioma or a desmoid tumour is correct coding. (b) A first-listed code
    other than Z51.0/Z51.11/Z51.12 with no surgical procedure on the claim is an error,
    and a warning on an inpatient claim (inpatient claims carry no CPT, so a same-stay
    operation cannot be seen; a surgical CPT code billed on one still exempts it). An
    invalid first-listed code is MET-001's alone: (b) and (c) then do not apply. (c) A
    first-listed Z51 code with a surgical procedure on an outpatient or professional claim
    is a warning: when the episode includes surgical removal of the neoplasm, the
    neoplasm leads (I.C.2.e.1). A surgical procedure is an all-digit CPT code in
    10021-69990 outside 36000-36999 (vascular access). Brachytherapy is MET-035.

    Example that fails: C50.912, Z51.11, C78.7 with 96413. Passes: Z51.11, D46.21 with
    96401, J9025.
    """
    therapy = claim.in_set(_THERAPY_ENCOUNTER)
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
    surgery = claim.procedures_in(_SURGERY)
    if first.code not in _THERAPY_ENCOUNTER and not surgery and not claim.evidence_in(_SURGERY):
        severity: Severity = "warning" if claim.setting == "inpatient" else "error"
        return hit(
            severity,
            f"{codes_of(therapy)} (antineoplastic therapy encounter) is not first-listed: "
            f"sequence it before {first.code}",
            diagnoses=[first, *therapy],
        )
    if first.code in _THERAPY_ENCOUNTER and surgery:
        return hit(
            "warning",
            f"{first.code} leads an episode that includes surgery "
            f"({', '.join(p.code for p in surgery)}): the neoplasm should lead (I.C.2.e.1)",
            diagnoses=[first],
            procedures=surgery,
        )
    return None


_MANIFESTATIONS = CodeSet(
    "J91.0 I31.31 D63.0 R53.0 G13.0 G13.1 G73.1 M36.0 M36.1 M90.6 R18.0 E88.A"
)
_NEEDS_NEOPLASM = CodeSet("J91.0 I31.31 D63.0 R53.0 G13.0 G13.1 G73.1 M36.0 M36.1 M90.6")
_MALIGNANT_ASCITES = CodeSet("R18.0")
_CACHEXIA = CodeSet("E88.A")
_NOT_UNDERLYING = CodeSet("E88.A R64")


@rule(
    "MET-017",
    title="Manifestation / 'code first' codes need their underlying neoplasm and must not lead",
    severity="error",
    citation="ICD-10-CM Tabular 'code first' notes; CMS Medicare Code Editor (manifestation as principal); Official Guidelines I.C.2.c.1",
    carc="16",
    rarc="MA63",
    applies_to=_MANIFESTATIONS,
)
def met017_manifestation_codes(claim: Claim) -> Hit | None:
    """Manifestation codes follow the condition that causes them, and need it coded.

    The codes: J91.0, I31.31, D63.0, R53.0, G13.0, G13.1, G73.1, M36.0, M36.1, M90.6-,
    R18.0 and E88.A. Any of them first-listed is an error. Any of them other than R18.0
    and E88.A without a neoplasm (C00-D49) is an error; R18.0 (malignant ascites) without
    a malignancy (C00-C96) is an error; E88.A (cachexia due to an underlying condition)
    without an underlying condition (a code outside Z that is neither E88.A nor R64) is
    an error. The rule checks that some neoplasm is present, not the one a note names.

    Example that fails: I31.31, C34.11 with 33016. Passes: C34.11, I31.31 with 33016.
    """
    manifestations = claim.in_set(_MANIFESTATIONS)
    if not manifestations:
        return None
    problems: list[str] = []
    involved: list[ClaimDiagnosis] = []
    if claim.first_in(_MANIFESTATIONS):
        first = claim.first
        assert first is not None
        problems.append(f"{first.code} is a manifestation code and cannot be first-listed")
        involved.append(first)
    orphans = [d for d in manifestations if d.code in _NEEDS_NEOPLASM]
    if orphans and not claim.has(Trait.NEOPLASM):
        problems.append(f"{codes_of(orphans)} needs the underlying neoplasm coded")
        involved += orphans
    ascites = claim.in_set(_MALIGNANT_ASCITES)
    if ascites and not claim.has(Trait.MALIGNANCY):
        problems.append("R18.0 (malignant ascites) needs the malignancy coded")
        involved += ascites
    cachexia = claim.in_set(_CACHEXIA)
    if cachexia and not any(
        d.info.traits & Trait.NOT_Z and d.code not in _NOT_UNDERLYING for d in claim.valid
    ):
        problems.append("E88.A (cachexia due to underlying condition) needs the condition coded")
        involved += cachexia
    if not problems:
        return None
    return hit("error", "; ".join(problems), diagnoses=involved)


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

    Fires when the first-listed code is in R00-R99 (other than R18.0, which is MET-017's)
    and the claim carries a malignancy code. A warning, because whether the symptom is
    due to the malignancy cannot be read from the claim.

    Example that warns: R63.4, C25.0, C78.7. Passes: C25.0, C78.7, R63.4.
    """
    first = claim.first
    if first is None or not first.info.traits & Trait.SYMPTOM or first.code == "R18.0":
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


_FRACTURE_IN_NEOPLASM = CodeSet("M84.5")


@rule(
    "MET-019",
    title="Pathological fracture in neoplastic disease (M84.5-) requires the neoplasm code",
    severity="error",
    citation="ICD-10-CM Tabular M84.5 'code also underlying neoplasm'; Official Guidelines I.C.2.l.6",
    carc="16",
    rarc="M76",
    applies_to=_FRACTURE_IN_NEOPLASM,
)
def met019_pathological_fracture_needs_neoplasm(claim: Claim) -> Hit | None:
    """M84.5- needs the neoplasm (C00-D49) that caused the fracture coded too.

    Sequencing follows the focus of treatment (fracture first when it is the focus,
    neoplasm first otherwise), so order is not checked. Bone metastasis is C79.51.

    Example that fails: M84.522A, Z85.3. Passes: M84.522A, C79.51, Z85.3.
    """
    fractures = claim.in_set(_FRACTURE_IN_NEOPLASM)
    if not fractures or claim.has(Trait.NEOPLASM):
        return None
    return hit(
        "error",
        f"{codes_of(fractures)} (pathological fracture in neoplastic disease) without the "
        "neoplasm: code the underlying neoplasm (for bone metastasis, C79.51)",
        diagnoses=fractures,
    )


_PALLIATIVE = CodeSet("Z51.5")


@rule(
    "MET-020",
    title="Palliative care Z51.5 needs the condition requiring care; inpatient principal Z51.5 is flagged",
    severity="error",
    citation="ICD-10-CM Tabular Z51 'code also condition requiring care'; AHA Coding Clinic 1Q2017 pp. 48-49",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=_PALLIATIVE,
)
def met020_palliative_care(claim: Claim) -> Hit | None:
    """Z51.5 may lead when palliative care is the documented reason, but never stands alone.

    Z51.5 with no diagnosis outside chapter 21 (no non-Z code) is an error: the condition
    requiring care must be coded. Z51.5 as the principal diagnosis of an inpatient claim
    is a warning: it may be principal, but is typically not for an admission. Z51.5 is
    not on the Medicare Code Editor's unacceptable-principal list.

    Example that fails: Z51.5, Z66 with 99497. Passes: Z51.5, C25.0, C78.7 with 99215.
    """
    palliative = claim.in_set(_PALLIATIVE)
    if not palliative:
        return None
    if not claim.has(Trait.NOT_Z):
        return hit(
            "error",
            "Z51.5 (palliative care) without the condition requiring care: code the condition",
            diagnoses=palliative,
        )
    if claim.setting == "inpatient" and claim.first_in(_PALLIATIVE):
        return hit(
            "warning",
            "Z51.5 (palliative care) is the inpatient principal diagnosis: it typically "
            "follows the condition that occasioned the admission",
            diagnoses=palliative,
        )
    return None


_NEOPLASM_PAIN = CodeSet("G89.3")
_PAIN_CONTROL = re.compile(
    r"pain (control|management|crisis)|intractable pain|uncontrolled pain", re.IGNORECASE
)


@rule(
    "MET-021",
    title="Neoplasm-related pain G89.3 requires a neoplasm; first-listed only for pain-control encounters",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.6.b.5 (via I.C.2.h); Tabular G89.3",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=_NEOPLASM_PAIN,
)
def met021_neoplasm_pain(claim: Claim) -> Hit | None:
    """G89.3 needs a neoplasm, and leads only when the encounter is for pain control.

    G89.3 without a neoplasm (C00-D49) is an error. G89.3 first-listed when the reason for
    the encounter does not mention pain control, management or crisis, intractable or
    uncontrolled pain is a warning (a free-text heuristic, so never an error; an absent
    reason does not fire it).

    Example that fails: G89.3, M54.50. Passes: C79.51, C61, G89.3.
    """
    pain = claim.in_set(_NEOPLASM_PAIN)
    if not pain:
        return None
    if not claim.has(Trait.NEOPLASM):
        return hit(
            "error",
            "G89.3 (neoplasm related pain) without a neoplasm: code the neoplasm",
            diagnoses=pain,
        )
    reason = claim.reason_for_encounter
    if claim.first_in(_NEOPLASM_PAIN) and reason is not None and not _PAIN_CONTROL.search(reason):
        return hit(
            "warning",
            "G89.3 is first-listed but the reason for the encounter does not say it is for "
            "pain control or management",
            diagnoses=pain,
        )
    return None


_CACHEXIA_NOS = CodeSet("R64")


@rule(
    "MET-022",
    title="Cancer cachexia is E88.A; R64 is cachexia NOS",
    severity="error",
    citation="ICD-10-CM Tabular (April 2026): R64 Excludes1 E88.A; E88.A Excludes1 R64",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=_CACHEXIA_NOS,
)
def met022_cancer_cachexia(claim: Claim) -> Hit | None:
    """R64 (cachexia NOS) and E88.A (cachexia due to underlying condition) exclude each other.

    R64 with E88.A is an error. R64 with a malignancy and no E88.A is a warning: cancer
    cachexia is E88.A (whose 'code first' note MET-017 enforces). In the April 2026 set,
    R64 itself has no 'code first' note.

    Example that fails: C34.11, R64, E88.A. Passes: C34.11, E88.A.
    """
    nos = claim.in_set(_CACHEXIA_NOS)
    if not nos:
        return None
    due_to = claim.in_set(_CACHEXIA)
    if due_to:
        return hit(
            "error",
            "R64 (cachexia) and E88.A (cachexia due to underlying condition) exclude each "
            "other: keep E88.A for cancer cachexia",
            diagnoses=nos + due_to,
        )
    if claim.has(Trait.MALIGNANCY):
        return hit(
            "warning",
            "R64 (cachexia NOS) beside a malignancy: cancer cachexia is coded E88.A",
            diagnoses=nos,
        )
    return None


_TRANSPLANT_COMPLICATION = CodeSet("T86")
_TRANSPLANT_MALIGNANCY = CodeSet("C80.2")


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
    """C80.2 is never principal and needs the transplant complication and the cancer.

    C80.2 first-listed, with no T86.- code before it, or with no other malignancy code
    is an error: the Tabular says code first the complication of the transplanted organ
    (T86.-) and use an additional code for the specific malignancy.

    Example that fails: C80.2, C64.9. Passes: T86.19, C80.2, C64.9.
    """
    marker = claim.in_set(_TRANSPLANT_MALIGNANCY)
    if not marker:
        return None
    position = marker[0].sequence
    problems: list[str] = []
    if position == 1:
        problems.append("C80.2 is first-listed")
    if not any(d.sequence < position for d in claim.in_set(_TRANSPLANT_COMPLICATION)):
        problems.append("no T86.- transplant complication precedes it")
    if not any(
        not d.info.traits & Trait.TRANSPLANT_MALIGNANCY for d in claim.with_traits(Trait.MALIGNANCY)
    ):
        problems.append("the specific malignancy is not coded")
    if not problems:
        return None
    return hit(
        "error",
        f"C80.2 (malignancy of a transplanted organ): {'; '.join(problems)}; "
        "code T86.-, then C80.2, then the specific malignancy",
        diagnoses=marker,
    )


_RADIATION_ENCOUNTER = CodeSet("Z51.0")
_BRACHYTHERAPY = ProcedureCodes("77750 77761 77762 77763 77767 77768 77770 77771 77772 77778 77789")


@rule(
    "MET-035",
    title="Brachytherapy encounters do not use Z51.0",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.e.2",
    carc="16",
    rarc="M76",
    applies_to=_RADIATION_ENCOUNTER,
)
def met035_brachytherapy(claim: Claim) -> Hit | None:
    """For implanted radioactive elements the malignancy leads and Z51.0 is not assigned.

    Z51.0 with a brachytherapy procedure (77750, 77761-77763, 77767, 77768, 77770-77772,
    77778, 77789) is an error. Z51.0 is for external-beam radiation (MET-015). Inpatient
    claims carry no CPT, so the rule concerns outpatient and professional claims.

    Example that fails: Z51.0, C54.1, Z90.710 with 77770. Passes: C54.1, Z90.710 with
    77770.
    """
    radiation = claim.in_set(_RADIATION_ENCOUNTER)
    brachytherapy = claim.procedures_in(_BRACHYTHERAPY)
    if not radiation or not brachytherapy:
        return None
    return hit(
        "error",
        f"Z51.0 with brachytherapy ({', '.join(p.code for p in brachytherapy)}): sequence "
        "the malignancy first and do not assign Z51.0",
        diagnoses=radiation,
        procedures=brachytherapy,
    )
