"""MET-030 to MET-032: the diagnoses must support the procedures billed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream.core.claim import Claim, ClaimProcedure
from stream.core.codes.codeset import CodeSet
from stream.core.codes.cpt import ProcedureCodes
from stream.core.codes.icd10cm import TRAIT_CODES, Trait
from stream.core.rules.base import Hit, any_of, codes_of, current_malignancies, hit, rule
from stream.core.rules.code_lists import (
    FRACTURE_IN_NEOPLASM,
    SECONDARY_BONE,
    SECONDARY_MARROW,
    SECONDARY_MERKEL,
    CodeList,
    plain,
    valid_on,
)

CRANIOTOMY = ProcedureCodes("61510")
SUPRATENTORIAL_TUMOUR = CodeSet(
    "C71.0-C71.5 C71.8 C71.9 C79.31 C79.32 C83.390 D33.0 D33.2 D43.0 D43.2 D49.6"
)
"""Supratentorial brain tumours other than meningioma, primary or secondary, any behaviour."""
INFRATENTORIAL_TUMOUR = CodeSet("C71.6 C71.7 D33.1 D43.1")
LESION_WITHOUT_BRAIN_CODE = (
    INFRATENTORIAL_TUMOUR | CodeSet("C7B.00 C7B.09 C7B.8") | SECONDARY_MERKEL | CodeSet("C83.39-")
)
"""Codes that can describe a brain lesion without a supratentorial brain code."""


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
    """Craniotomy 61510 excises a supratentorial brain tumour other than meningioma, of any histology.

    ## What it checks
    {CRANIOTOMY} with no supratentorial brain tumour code ({SUPRATENTORIAL_TUMOUR}) is an
    error. It is a warning instead when the claim carries a code that can describe the lesion
    without a supratentorial brain code: {LESION_WITHOUT_BRAIN_CODE}, or a lymphoma code
    ({Trait.LYMPHOMA}) whose last character is 9. The error message lists the supporting
    codes valid on the claim's date.

    ## Why
    The CPT descriptor of 61510 is excision of a brain tumour, supratentorial, except
    meningioma: a primary (C71.1 glioblastoma) as well as a metastasis (C79.31). Meningioma
    excision is 61512, infratentorial excision 61518 ({INFRATENTORIAL_TUMOUR}). Brain
    metastases of neuroendocrine carcinoma, Merkel cell carcinoma and secondary CNS lymphoma
    have no brain-specific code, so they only warn.
    """
    craniotomy = claim.procedures_in(CRANIOTOMY)
    if not craniotomy or claim.any_in(SUPRATENTORIAL_TUMOUR):
        return None
    describable = claim.in_set(LESION_WITHOUT_BRAIN_CODE) or [
        d for d in claim.with_traits(Trait.LYMPHOMA) if d.code.endswith("9")
    ]
    if describable:
        return hit(
            "warning",
            f"{plain(CRANIOTOMY)} (supratentorial brain tumour excision) without a "
            "supratentorial brain tumour code; the lesion may be described by "
            f"{codes_of(describable)}: review",
            diagnoses=describable,
            procedures=craniotomy,
        )
    return hit(
        "error",
        f"{plain(CRANIOTOMY)} (supratentorial brain tumour excision) has no supporting "
        f"supratentorial brain tumour diagnosis ({valid_on(SUPRATENTORIAL_TUMOUR, claim)})",
        procedures=craniotomy,
    )


PET = ProcedureCodes("78811-78816")
PET_SUPPORT = CodeSet("D37-D49 !D3A R91.1 R93.41 R93.421 R93.422 R93.49 R77.9")
"""Besides a malignancy: the neoplasms of uncertain or unspecified behaviour and the
findings the NCD lists (lung nodule, abnormal findings on imaging of kidney, raised PSA...)."""
NON_FDG_TRACERS = ProcedureCodes("A9587 A9588 A9593 A9595 A9596 A9800 A9616")
PET_SOFT_FINDINGS = CodeSet("R90-R99 R59")
PROSTATE = CodeSet("C61")
INITIAL_STRATEGY_WORDS = ("initial", "newly diagnosed", "new diagnosis", "staging")
_INITIAL_STRATEGY = any_of(INITIAL_STRATEGY_WORDS)


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

    ## What it checks
    PET or PET-CT ({PET}) with no supporting diagnosis is an error. Supporting: any
    malignancy other than {Trait.TRANSPLANT_MALIGNANCY}, or {PET_SUPPORT}; a Z85 code supports
    nothing by itself. It is a warning instead when the claim carries a non-FDG PET tracer
    ({NON_FDG_TRACERS}) or a finding of {PET_SOFT_FINDINGS}. A supported PET whose only
    malignancy is {PROSTATE} warns when the reason for the encounter says
    {INITIAL_STRATEGY_WORDS}.

    ## Why
    CMS NCD 220.6.17 covers FDG PET for beneficiaries with solid tumours that are biopsy
    proven or strongly suspected; MAC billing articles (CR 10859) list the supporting
    diagnoses. A non-FDG tracer is not governed by that coverage rule, and an abnormal finding
    may be the suspicion the record documents: both are reviewed. Initial anti-tumour
    strategy FDG PET for prostate adenocarcinoma is nationally non-covered. A Medicare
    coverage edit applied to every claim, since the rules do not read the payer.
    """
    pet = claim.procedures_in(PET)
    if not pet:
        return None
    cancers = current_malignancies(claim)
    if not cancers and not claim.any_in(PET_SUPPORT):
        tracers = claim.procedures_in(NON_FDG_TRACERS)
        findings = claim.in_set(PET_SOFT_FINDINGS)
        if tracers or findings:
            return hit(
                "warning",
                f"{codes_of(pet)} (PET) without a cancer diagnosis or an NCD-listed finding, "
                "billed with a non-FDG tracer or an abnormal finding: review",
                diagnoses=findings,
                procedures=[*pet, *tracers],
            )
        return hit(
            "error",
            f"{codes_of(pet)} (PET) needs a cancer diagnosis or an NCD-listed finding; a "
            "history code alone does not support it",
            procedures=pet,
        )
    reason = claim.reason_for_encounter
    if (
        cancers
        and all(d.code in PROSTATE for d in cancers)
        and reason is not None
        and _INITIAL_STRATEGY.search(reason)
    ):
        return hit(
            "warning",
            f"FDG PET for the initial treatment strategy of prostate cancer ({PROSTATE}) is "
            "nationally non-covered: review the tracer and the indication",
            diagnoses=cancers,
            procedures=pet,
        )
    return None


@dataclass(frozen=True, slots=True)
class ProcedureSupport:
    """Site-specific procedures and the diagnoses that support them (a code set, or code
    families: `Trait` bits)."""

    name: str
    procedures: ProcedureCodes
    diagnoses: CodeSet | int
    needs: str
    """What the message says the procedure needs."""

    def supported(self, claim: Claim) -> bool:
        if isinstance(self.diagnoses, int):
            return claim.has(self.diagnoses)
        return claim.any_in(self.diagnoses)

    def document(self, show: Callable[[CodeList], str]) -> str:
        if isinstance(self.diagnoses, int):
            codes = show(TRAIT_CODES[self.diagnoses])
        else:
            codes = show(self.diagnoses)
        return f"{self.name} {show(self.procedures)}: {codes}"


SUPPORT = (
    ProcedureSupport(
        "liver biopsy",
        ProcedureCodes("47000 47001"),
        CodeSet("C22 C24 C78.7 C7B.02 D13.4 D37.6 K70-K77 R16.0 R16.2 R74 R93.2 B18"),
        "a liver diagnosis",
    ),
    ProcedureSupport(
        "bone biopsy",
        ProcedureCodes("20220 20225 20240 20245 20250 20251"),
        CodeSet("C40-C41")
        | SECONDARY_BONE
        | SECONDARY_MARROW
        | CodeSet("C7B.03 C90 D16 D48.0")
        | FRACTURE_IN_NEOPLASM
        | CodeSet("M89 R93.7"),
        "a bone diagnosis",
    ),
    ProcedureSupport(
        "muscle biopsy",
        ProcedureCodes("20200 20205 20206"),
        CodeSet("C45-C49 C79.89 D21 D48.1 M60-M63 M79 G71-G73"),
        "a muscle or soft-tissue diagnosis",
    ),
    ProcedureSupport(
        "lung biopsy",
        ProcedureCodes("32408 32405"),
        CodeSet("C34 C37 C38 C45.0 C78.0 C78.1 C78.2 C77.1 C7A.090 D14.3 D38 R91 R59 J98.4"),
        "a lung, mediastinal or pleural diagnosis",
    ),
    ProcedureSupport(
        "brain MRI",
        ProcedureCodes("70553"),
        CodeSet(
            "C00-C96 D32-D33 D35.2-D35.4 D42-D43 D44.3-D44.5 D49.6 G93 R51 R56 R47 R41.0 H53.4"
        ),
        "a malignancy or a neurological diagnosis",
    ),
    ProcedureSupport(
        "visual fields",
        ProcedureCodes("92083"),
        CodeSet("H40-H42 H46-H47 H53.4 H02.4 C69 C71 C72 C79.31 C75.1 D33 D35.2 D43 D49.6"),
        "a visual-pathway diagnosis",
    ),
    ProcedureSupport(
        "lymph-node procedures",
        ProcedureCodes("38500-38531 38792 38900"),
        CodeSet("C00-D49 R59"),
        "a neoplasm or enlarged lymph nodes (R59)",
    ),
    ProcedureSupport(
        "circulating tumour cells",
        ProcedureCodes("86152 86153"),
        Trait.MALIGNANCY,
        "a malignancy",
    ),
)


_SUPPORT_BY_CODE = {code: support for support in SUPPORT for code in support.procedures.codes()}


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

    ## What it checks
    Each procedure below, billed with none of its supporting diagnoses on the claim, warns:
    {SUPPORT}.

    ## Why
    A site-specific biopsy, image or test is supported by a diagnosis of that site or by a
    cancer (CPT descriptors; LCDs such as L33574 for visual fields 92083): a bone-only
    diagnosis on a muscle biopsy means the wrong code family. The lists are derived from the
    descriptors and sample policies, so a warning only.
    """
    unsupported: list[tuple[ClaimProcedure, ProcedureSupport]] = []
    for procedure in claim.procedures:
        support = _SUPPORT_BY_CODE.get(procedure.code)
        if support is not None and not support.supported(claim):
            unsupported.append((procedure, support))
    if not unsupported:
        return None
    described = "; ".join(f"{p.code} needs {support.needs}" for p, support in unsupported)
    return hit(
        "warning",
        f"procedure without a supporting diagnosis: {described}",
        procedures=[p for p, _ in unsupported],
    )
