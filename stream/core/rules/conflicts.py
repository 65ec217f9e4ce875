"""MET-033, MET-038 and MET-039: codes that contradict each other on one claim."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.rules.base import Hit, codes_of, hit, pair_hit, rule, together
from stream.core.rules.code_lists import (
    FRACTURE_IN_NEOPLASM,
    MALIGNANT_ASCITES,
    MALIGNANT_PLEURAL_EFFUSION,
    SECONDARY_BONE,
    CodeList,
)

# `#` is a digit: the fifth character of C50.x1x/C50.x2x names the site; in the
# inflammatory C50.A0-C50.A2 (FY2026) it is the letter A, and 1 and 2 are the side.
FEMALE_ONLY = CodeSet("C51-C58 C79.6 C50.#1 Z85.40-Z85.44 Z85.4A D06 O00-O9A")
MALE_ONLY = CodeSet("C60-C63 C50.#2 Z85.45-Z85.49 N40-N53")


@rule(
    "MET-033",
    title="Sex-specific diagnoses must not conflict within one claim",
    severity="error",
    citation="CMS Medicare Code Editor edit 5 (sex conflict)",
    carc="10",
    rarc="M76",
    applies_to=FEMALE_ONLY,
)
def met033_sex_conflict(claim: Claim) -> Hit | None:
    """A claim cannot carry both female-only and male-only diagnoses.

    ## What it checks
    A claim with a female-only code ({FEMALE_ONLY}) and a male-only code ({MALE_ONLY}) fails.
    In C50.x1 and C50.x2 the x is a digit: the inflammatory-breast codes C50.A0-C50.A2 (from
    2025-10-01) name the side, not the sex, and are neither. The check is within the claim;
    it does not read the patient's sex.

    ## Why
    The Medicare Code Editor's sex-conflict edit (edit 5) rejects a claim whose diagnoses are
    valid only for one sex when another diagnosis is valid only for the other: one of them
    is miscoded.
    """
    return pair_hit(
        together(claim, FEMALE_ONLY, MALE_ONLY),
        "error",
        lambda female, male: (
            f"female-only {codes_of(female)} and male-only {codes_of(male)} on one claim"
        ),
    )


PLEURAL_EFFUSION_NOS = CodeSet("J90")
OTHER_ASCITES = CodeSet("R18.8")
SEROSAL_EFFUSIONS = PLEURAL_EFFUSION_NOS | OTHER_ASCITES


@dataclass(frozen=True, slots=True)
class SerosalPair:
    """A non-malignant effusion code and the secondary of the same serosa."""

    effusion: CodeSet
    metastasis: CodeSet

    def document(self, show: Callable[[CodeList], str]) -> str:
        return f"{show(self.effusion)} beside {show(self.metastasis)}"


SEROSAL_METASTASES = (
    SerosalPair(PLEURAL_EFFUSION_NOS, CodeSet("C78.2")),
    SerosalPair(OTHER_ASCITES, CodeSet("C78.6")),
)


@rule(
    "MET-038",
    title="Serosal metastasis with a non-malignant effusion or ascites code",
    severity="warning",
    citation="ICD-10-CM Tabular J90 Excludes1 (J91.0); R18.0 malignant ascites",
    carc="16",
    rarc="M76",
    applies_to=SEROSAL_EFFUSIONS,
)
def met038_serosal_effusion(claim: Claim) -> Hit | None:
    """A malignant pleural effusion is J91.0 and malignant ascites is R18.0.

    ## What it checks
    A non-malignant effusion code beside a secondary of the same serosa warns:
    {SEROSAL_METASTASES}.

    ## Why
    J90 excludes the malignant pleural effusion ({MALIGNANT_PLEURAL_EFFUSION}), and
    malignant ascites has its own code ({MALIGNANT_ASCITES}). A warning, because an effusion
    can be documented as non-malignant in a patient with serosal metastases.
    """
    involved = [
        d
        for pair in SEROSAL_METASTASES
        for found in [together(claim, pair.effusion, pair.metastasis)]
        if found is not None
        for d in found[0] + found[1]
    ]
    if not involved:
        return None
    return hit(
        "warning",
        f"{codes_of(involved)}: a non-malignant effusion or ascites code beside a serosal "
        f"metastasis; malignant pleural effusion is {MALIGNANT_PLEURAL_EFFUSION}, malignant "
        f"ascites {MALIGNANT_ASCITES}",
        diagnoses=involved,
    )


FRACTURE_NOS = CodeSet("M84.4-")
BONE_NEOPLASM = CodeSet("C40 C41 C90") | SECONDARY_BONE | CodeSet("C7B.03")


@rule(
    "MET-039",
    title="Pathological fracture NOS (M84.4-) with a bone neoplasm",
    severity="warning",
    citation="ICD-10-CM Tabular M84.4 Excludes1 (M84.5-); Official Guidelines I.C.2.l.6",
    carc="16",
    rarc="M76",
    applies_to=FRACTURE_NOS,
)
def met039_fracture_nos_with_bone_neoplasm(claim: Claim) -> Hit | None:
    """A pathological fracture in neoplastic disease is M84.5-, not M84.4-.

    ## What it checks
    {FRACTURE_NOS} (pathological fracture NOS) beside a bone neoplasm ({BONE_NEOPLASM})
    warns.

    ## Why
    M84.4- excludes the pathological fracture in neoplastic disease
    ({FRACTURE_IN_NEOPLASM}; Tabular Excludes1, I.C.2.l.6). A warning, because the fracture
    may be documented as unrelated to the neoplasm.
    """
    return pair_hit(
        together(claim, FRACTURE_NOS, BONE_NEOPLASM),
        "warning",
        lambda fractures, neoplasms: (
            f"{codes_of(fractures)} (pathological fracture NOS) beside {codes_of(neoplasms)}: "
            f"a fracture due to the neoplasm is {FRACTURE_IN_NEOPLASM}"
        ),
    )
