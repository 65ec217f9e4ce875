"""MET-033, MET-038 and MET-039: codes that contradict each other on one claim."""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.rules.base import Hit, codes_of, hit, rule

# `#` is a digit: the fifth character of C50.x1x/C50.x2x names the site; in the
# inflammatory C50.A0-C50.A2 (FY2026) it is the letter A, and 1 and 2 are the side.
_FEMALE_ONLY = CodeSet("C51-C58 C79.6 C50.#1 Z85.40-Z85.44 Z85.4A D06 O")
_MALE_ONLY = CodeSet("C60-C63 C50.#2 Z85.45-Z85.49 N40-N53")


@rule(
    "MET-033",
    title="Sex-specific diagnoses must not conflict within one claim",
    severity="error",
    citation="CMS Medicare Code Editor edit 5 (sex conflict)",
    carc="10",
    rarc="M76",
    applies_to=_FEMALE_ONLY,
)
def met033_sex_conflict(claim: Claim) -> Hit | None:
    """A claim cannot carry both female-only and male-only diagnoses.

    Female-only: C51-C58, C79.6-, female-breast C50.x1x, Z85.40-Z85.44, Z85.4A, D06.-,
    O codes. Male-only: C60-C63, male-breast C50.x2x, Z85.45-Z85.49, N40-N53. In
    C50.x1x and C50.x2x the x is a digit: the inflammatory-breast codes C50.A0-C50.A2
    (from 2025-10-01) name the side, not the sex, and are neither. The check is within the
    claim; it does not read the patient's sex.

    Example that fails: C50.911, C61. Passes: C50.921 (male breast), C61.
    """
    female = claim.in_set(_FEMALE_ONLY)
    male = claim.in_set(_MALE_ONLY)
    if not female or not male:
        return None
    return hit(
        "error",
        f"female-only {codes_of(female)} and male-only {codes_of(male)} on one claim",
        diagnoses=female + male,
    )


_PLEURAL = (CodeSet("J90"), CodeSet("C78.2"))
_PERITONEAL = (CodeSet("R18.8"), CodeSet("C78.6"))
_SEROSAL_EFFUSIONS = CodeSet("J90 R18.8")


@rule(
    "MET-038",
    title="Serosal metastasis with a non-malignant effusion or ascites code",
    severity="warning",
    citation="ICD-10-CM Tabular J90 Excludes1 (J91.0); R18.0 malignant ascites",
    carc="16",
    rarc="M76",
    applies_to=_SEROSAL_EFFUSIONS,
)
def met038_serosal_effusion(claim: Claim) -> Hit | None:
    """A malignant pleural effusion is J91.0 and malignant ascites is R18.0.

    J90 beside C78.2 (pleural metastasis) or R18.8 beside C78.6 (peritoneal metastasis)
    warns. A warning, because an effusion can be documented as non-malignant in a patient
    with serosal metastases.

    Example that warns: C78.2, C50.911, J90 with 32555. Passes: C78.2, C50.911, J91.0.
    """
    involved = []
    for effusion, metastasis in (_PLEURAL, _PERITONEAL):
        effusions = claim.in_set(effusion)
        metastases = claim.in_set(metastasis)
        if effusions and metastases:
            involved += effusions + metastases
    if not involved:
        return None
    return hit(
        "warning",
        f"{codes_of(involved)}: a non-malignant effusion or ascites code beside a serosal "
        "metastasis; malignant pleural effusion is J91.0, malignant ascites R18.0",
        diagnoses=involved,
    )


_FRACTURE_NOS = CodeSet("M84.4")
_BONE_NEOPLASM = CodeSet("C40 C41 C90 C79.51 C7B.03")


@rule(
    "MET-039",
    title="Pathological fracture NOS (M84.4-) with a bone neoplasm",
    severity="warning",
    citation="ICD-10-CM Tabular M84.4 Excludes1 (M84.5-); Official Guidelines I.C.2.l.6",
    carc="16",
    rarc="M76",
    applies_to=_FRACTURE_NOS,
)
def met039_fracture_nos_with_bone_neoplasm(claim: Claim) -> Hit | None:
    """A pathological fracture in neoplastic disease is M84.5-, not M84.4-.

    M84.4- beside C40, C41, C90, C79.51 or C7B.03 warns; the fracture may be documented
    as unrelated to the neoplasm.

    Example that warns: M84.451A, C79.51, C61. Passes: M84.551A, C79.51, C61.
    """
    fractures = claim.in_set(_FRACTURE_NOS)
    neoplasms = claim.in_set(_BONE_NEOPLASM)
    if not fractures or not neoplasms:
        return None
    return hit(
        "warning",
        f"{codes_of(fractures)} (pathological fracture NOS) beside {codes_of(neoplasms)}: a "
        "fracture due to the neoplasm is M84.5-",
        diagnoses=fractures + neoplasms,
    )
