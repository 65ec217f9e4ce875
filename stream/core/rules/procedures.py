"""MET-030 to MET-032: the diagnoses must support the procedures billed."""

from __future__ import annotations

import re

from stream.core.claim import Claim, ClaimProcedure
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, hit, rule

_CRANIOTOMY = ProcedureCodes("61510")
_SUPRATENTORIAL_TUMOUR = CodeSet(
    "C71.0-C71.5 C71.8 C71.9 C79.31 C79.32 C83.390 D33.0 D33.2 D43.0 D43.2 D49.6"
)
_LESION_WITHOUT_BRAIN_CODE = CodeSet("C71.6 C71.7 D33.1 D43.1 C7B.00 C7B.09 C7B.8 C7B.1 C83.39")
_LYMPHOMA = CodeSet("C81-C86 C88 C96")


@rule(
    "MET-030",
    title="Craniotomy 61510 requires a supratentorial brain-tumour diagnosis",
    severity="error",
    citation="CPT 61510 descriptor (supratentorial brain tumour, except meningioma)",
    carc="11",
    rarc="M76",
    warning_branches=True,
    reads_procedures=True,
)
def met030_craniotomy_diagnosis(claim: Claim) -> Hit | None:
    """61510 excises a supratentorial brain tumour other than meningioma, of any histology.

    61510 with none of C71.0-C71.5, C71.8, C71.9, C79.31, C79.32, C83.390, D33.0, D33.2,
    D43.0, D43.2, D49.6 is an error. It is a warning instead when the claim carries a
    code that can describe the lesion without a supratentorial brain code: infratentorial
    C71.6, C71.7, D33.1, D43.1 (whose excision is 61518); secondary neuroendocrine
    C7B.00, C7B.09, C7B.8; secondary Merkel cell C7B.1; C83.39-; or a lymphoma code
    (C81-C86, C88, C96) whose last character is 9. Meningioma excision is 61512.

    Example that fails: C79.49, C34.12 with 61510. Passes: C79.31, C34.12 with 61510.
    """
    craniotomy = claim.procedures_in(_CRANIOTOMY)
    if not craniotomy or claim.in_set(_SUPRATENTORIAL_TUMOUR):
        return None
    describable = claim.in_set(_LESION_WITHOUT_BRAIN_CODE) or [
        d for d in claim.in_set(_LYMPHOMA) if d.code.endswith("9")
    ]
    if describable:
        return hit(
            "warning",
            "61510 (supratentorial brain tumour excision) without a supratentorial brain "
            "tumour code; the lesion may be described by "
            f"{', '.join(d.code for d in describable)}: review",
            diagnoses=describable,
            procedures=craniotomy,
        )
    return hit(
        "error",
        "61510 (supratentorial brain tumour excision) has no supporting supratentorial "
        "brain tumour diagnosis (C71.0-C71.5, C71.8, C71.9, C79.31, C79.32, D33.0, D33.2, "
        "D43.0, D43.2, D49.6)",
        procedures=craniotomy,
    )


_PET = ProcedureCodes("78811-78816")
_PET_SUPPORT = CodeSet("D37-D49 !D3A R91.1 R93.41 R93.421 R93.422 R93.49 R77.9")
_NON_FDG_TRACERS = ProcedureCodes("A9587 A9588 A9593 A9595 A9596 A9800 A9616")
_PET_SOFT_FINDINGS = CodeSet("R90-R99 R59")
_PROSTATE = CodeSet("C61")
_INITIAL_STRATEGY = re.compile(
    r"\b(initial|newly diagnosed|new diagnosis|staging)\b", re.IGNORECASE
)


@rule(
    "MET-031",
    title="PET/PET-CT (78811-78816) requires a cancer diagnosis or an NCD-listed finding",
    severity="error",
    citation="CMS NCD 220.6.17 (FDG PET for oncologic conditions); MAC billing articles (CR 10859)",
    carc="50",
    rarc="N386",
    warning_branches=True,
    reads_procedures=True,
)
def met031_pet_needs_cancer(claim: Claim) -> Hit | None:
    """Oncologic FDG PET needs a biopsy-proven or strongly suspected cancer.

    78811-78816 with no supporting diagnosis is an error. Supporting: any malignancy
    other than C80.2; D37-D49 other than D3A; R91.1, R93.41, R93.421, R93.422, R93.49,
    R77.9. A Z85 code supports nothing by itself. It is a warning instead when the claim
    carries a non-FDG PET tracer (A9587, A9588, A9593, A9595, A9596, A9800, and A9616
    from 2025-10-01), which the FDG coverage rule does not govern, or an R90-R99 or R59
    finding. A supported PET whose only
    malignancy is C61 warns when the reason for the encounter says initial, newly
    diagnosed, new diagnosis or staging: initial anti-tumour strategy FDG PET for prostate
    adenocarcinoma is nationally non-covered. A Medicare coverage edit applied to every
    claim, since the rules do not read the payer.

    Example that fails: Z08, Z85.3 with 78815. Passes: R93.421 with 78815 for a suspicious
    renal mass.
    """
    pet = claim.procedures_in(_PET)
    if not pet:
        return None
    cancers = [
        d
        for d in claim.with_traits(Trait.MALIGNANCY)
        if not d.info.traits & Trait.TRANSPLANT_MALIGNANCY
    ]
    if not cancers and not claim.in_set(_PET_SUPPORT):
        tracers = claim.procedures_in(_NON_FDG_TRACERS)
        findings = claim.in_set(_PET_SOFT_FINDINGS)
        if tracers or findings:
            return hit(
                "warning",
                f"{', '.join(p.code for p in pet)} (PET) without a cancer diagnosis or an "
                "NCD-listed finding, billed with a non-FDG tracer or an abnormal finding: review",
                diagnoses=findings,
                procedures=[*pet, *tracers],
            )
        return hit(
            "error",
            f"{', '.join(p.code for p in pet)} (PET) needs a cancer diagnosis or an NCD-listed "
            "finding; a history code alone does not support it",
            procedures=pet,
        )
    reason = claim.reason_for_encounter
    if (
        cancers
        and all(d.code in _PROSTATE for d in cancers)
        and reason is not None
        and _INITIAL_STRATEGY.search(reason)
    ):
        return hit(
            "warning",
            "FDG PET for the initial treatment strategy of prostate cancer (C61) is "
            "nationally non-covered: review the tracer and the indication",
            diagnoses=cancers,
            procedures=pet,
        )
    return None


_SUPPORT: tuple[tuple[ProcedureCodes, CodeSet | int, str], ...] = (
    (
        ProcedureCodes("47000 47001"),
        CodeSet("C22 C24 C78.7 C7B.02 D13.4 D37.6 K70-K77 R16.0 R16.2 R74 R93.2 B18"),
        "a liver diagnosis",
    ),
    (
        ProcedureCodes("20220 20225 20240 20245 20250 20251"),
        CodeSet("C40-C41 C79.51 C79.52 C7B.03 C90 D16 D48.0 M84.5 M89 R93.7"),
        "a bone diagnosis",
    ),
    (
        ProcedureCodes("20200 20205 20206"),
        CodeSet("C45-C49 C79.89 D21 D48.1 M60-M63 M79 G71-G73"),
        "a muscle or soft-tissue diagnosis",
    ),
    (
        ProcedureCodes("32408 32405"),
        CodeSet("C34 C37 C38 C45.0 C78.0 C78.1 C78.2 C77.1 C7A.090 D14.3 D38 R91 R59 J98.4"),
        "a lung, mediastinal or pleural diagnosis",
    ),
    (
        ProcedureCodes("70553"),
        CodeSet(
            "C00-C96 D32-D33 D35.2-D35.4 D42-D43 D44.3-D44.5 D49.6 G93 R51 R56 R47 R41.0 H53.4"
        ),
        "a malignancy or a neurological diagnosis",
    ),
    (
        ProcedureCodes("92083"),
        CodeSet("H40-H42 H46-H47 H53.4 H02.4 C69 C71 C72 C79.31 C75.1 D33 D35.2 D43 D49.6"),
        "a visual-pathway diagnosis",
    ),
    (
        ProcedureCodes("38500-38531 38792 38900"),
        CodeSet("C00-D49 R59"),
        "a neoplasm or enlarged lymph nodes (R59)",
    ),
    (ProcedureCodes("86152 86153"), Trait.MALIGNANCY, "a malignancy"),
)


_SUPPORT_BY_CODE = {
    code: (support, needs) for procedures, support, needs in _SUPPORT for code in procedures.codes()
}


@rule(
    "MET-032",
    title="Site-specific biopsy/imaging/nodal/CTC procedures should carry a supporting diagnosis",
    severity="warning",
    citation="CPT descriptors; representative LCDs and payer policies (e.g. LCD L33574 for 92083)",
    carc="11",
    rarc="M76",
    reads_procedures=True,
)
def met032_procedure_support(claim: Claim) -> Hit | None:
    """Flag site-specific procedures whose diagnoses describe neither the site nor a cancer.

    Liver biopsy 47000/47001: C22, C24, C78.7, C7B.02, D13.4, D37.6, K70-K77, R16.0,
    R16.2, R74, R93.2, B18. Bone biopsy 20220-20251: C40-C41, C79.51, C79.52, C7B.03, C90,
    D16, D48.0, M84.5, M89, R93.7. Muscle biopsy 20200-20206: C45-C49, C79.89, D21, D48.1,
    M60-M63, M79, G71-G73 (a bone-only diagnosis means the wrong code family). Lung biopsy
    32408/32405: C34, C37, C38, C45.0, C78.0-C78.2, C77.1, C7A.090, D14.3, D38, R91, R59,
    J98.4. Brain MRI 70553: any malignancy or a neurological diagnosis. Visual fields
    92083: H40-H42, H46-H47, H53.4, H02.4, C69, C71, C72, C79.31, C75.1, D33, D35.2, D43,
    D49.6. Lymph-node procedures 38500-38531, 38792, 38900: any neoplasm or R59.
    Circulating tumour cells 86152/86153: any malignancy. Lists are derived from the
    descriptors and sample policies, so a warning only.

    Example that warns: C79.51, C80.1 with muscle biopsy 20206. Passes: the same with bone
    biopsy 20225.
    """
    unsupported: list[tuple[ClaimProcedure, str]] = []
    for procedure in claim.procedures:
        listed = _SUPPORT_BY_CODE.get(procedure.code)
        if listed is None:
            continue
        support, needs = listed
        supported = claim.has(support) if isinstance(support, int) else claim.any_in(support)
        if not supported:
            unsupported.append((procedure, needs))
    if not unsupported:
        return None
    described = "; ".join(f"{p.code} needs {needs}" for p, needs in unsupported)
    return hit(
        "warning",
        f"procedure without a supporting diagnosis: {described}",
        procedures=[p for p, _ in unsupported],
    )
