"""MET-010, MET-011, MET-012, MET-016 and MET-037: active disease versus personal history."""

from __future__ import annotations

from stream.core.claim import Claim, ClaimDiagnosis
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import SiteFamily, Trait
from stream.core.contracts import Severity
from stream.core.rules.base import Hit, codes_of, hit, rule

_PAIRED_OR_MULTICENTRIC = frozenset(
    {
        "bone",
        "breast",
        "colon",
        "eye",
        "fallopian",
        "kidney",
        "liporal",
        "lung",
        "melanoma",
        "merkel",
        "otherresp",
        "ovary",
        "rectum",
        "skinother",
        "softtissue",
        "testis",
    }
)
"""Site families (catalogue Appendix A) where MET-010 warns: a new primary beside an
eradicated one is common there. Every other family is an error."""


def shared_families(claim: Claim) -> list[tuple[SiteFamily, list[ClaimDiagnosis]]]:
    """Site families (Appendix A) present both as an active primary and as a Z85 code."""
    if not claim.has(Trait.HISTORY) or not claim.has(Trait.ACTIVE_PRIMARY):
        return []
    active: dict[str, list[ClaimDiagnosis]] = {}
    history: dict[str, list[ClaimDiagnosis]] = {}
    families: dict[str, SiteFamily] = {}
    for diagnosis in claim.valid:
        family = diagnosis.info.family
        if family is None:
            continue
        families[family.name] = family
        side = history if diagnosis.info.traits & Trait.HISTORY else active
        side.setdefault(family.name, []).append(diagnosis)
    return [
        (families[name], active[name] + history[name])
        for name in sorted(active.keys() & history.keys())
    ]


@rule(
    "MET-010",
    title="Personal history (Z85) and an active primary of the same site family",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.d, I.C.2.m; Tabular Excludes1 at C81-C96 to Z85.6/Z85.7-",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=Trait.HISTORY,
)
def met010_history_and_active_same_site(claim: Claim) -> Hit | None:
    """A Z85 code and an active primary of the same organ contradict each other.

    Z85 describes a former primary that has been eradicated. Each active primary and each
    Z85 code maps to a site family (catalogue Appendix A, `data/site_families.csv`). A
    family on both sides is an error where the Tabular excludes the pair (the
    haematological families) or the organ is single (history plus active then means a
    recurrence, which is coded to the primary site). In paired or multicentric sites
    (bone, breast, colon, eye, fallopian tube, kidney, lip and oral cavity, lung,
    melanoma, Merkel cell, other respiratory, ovary, rectum, other skin, soft tissue,
    testis) a new primary beside an eradicated one is common, so the finding is a warning
    there; Z85 has no laterality, so a same-breast recurrence coded with Z85.3 also only
    warns.

    Example that fails: C61, C79.51, Z85.46. Passes: C50.911, C79.51.
    """
    shared = shared_families(claim)
    if not shared:
        return None
    severity: Severity = (
        "warning" if all(f.name in _PAIRED_OR_MULTICENTRIC for f, _ in shared) else "error"
    )
    involved = [d for _, diagnoses in shared for d in diagnoses]
    names = ", ".join(f.name for f, _ in shared)
    advice = (
        "history and active disease of one organ contradict each other: a recurrence is "
        "coded to the primary site"
        if severity == "error"
        else "review whether this is a new primary beside an eradicated one"
    )
    return hit(
        severity,
        f"{codes_of(involved)}: personal history and an active primary of the same site "
        f"({names}); {advice}",
        diagnoses=involved,
    )


@rule(
    "MET-011",
    title="`primary_status` must agree with how the primary is coded",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.m, I.C.2.d",
    carc="16",
    rarc="M76",
    warning_branches=True,
)
def met011_primary_status_agrees(claim: Claim) -> Hit | None:
    """An active primary needs a C code; an eradicated primary must not carry one.

    (a) `primary_status` 'active' with no active primary code (C00-C76, C4A, C7A,
    C81-C96) is an error; a warning when C80.0 or C80.1 is on the claim (the primary is
    active but not located). (b) 'eradicated' with an active primary code is an error
    when the claim has no Z85 code, and a warning when it has one (the active code may
    be a second cancer beside the eradicated one). 'unknown' and null are not checked.
    'eradicated' means the three-part test of I.C.2.m holds; a primary excised but still
    under adjuvant therapy is 'active'.

    Example that fails: status active with C79.51, Z85.46. Passes: status active with
    C79.51, C61.
    """
    if claim.primary_status == "active" and not claim.has(Trait.ACTIVE_PRIMARY):
        unlocated = claim.with_traits(Trait.DISSEMINATED | Trait.UNKNOWN_PRIMARY)
        if unlocated:
            return hit(
                "warning",
                f"primary_status is 'active' and the primary is coded as not located "
                f"({codes_of(unlocated)})",
                diagnoses=unlocated,
            )
        return hit(
            "error",
            "primary_status is 'active' but no active primary malignancy is coded "
            "(C00-C76, C7A or C81-C96)",
            diagnoses=claim.with_traits(Trait.HISTORY | Trait.SECONDARY | Trait.SECONDARY_NET),
        )
    if claim.primary_status == "eradicated" and claim.has(Trait.ACTIVE_PRIMARY):
        active = claim.with_traits(Trait.ACTIVE_PRIMARY)
        if claim.has(Trait.HISTORY):
            return hit(
                "warning",
                f"primary_status is 'eradicated' but {codes_of(active)} is coded as active; "
                "review whether it is a second cancer beside the eradicated one",
                diagnoses=active,
            )
        return hit(
            "error",
            f"primary_status is 'eradicated' but {codes_of(active)} is coded as active: an "
            "eradicated primary is reported with a Z85 history code",
            diagnoses=active,
        )
    return None


_FOLLOW_UP = CodeSet("Z08")
_TREATMENT = CodeSet("Z51.0 Z51.11 Z51.12 Z51.5")
_OTHER_ENCOUNTER = CodeSet("Z51 !Z51.0 !Z51.11 !Z51.12 !Z51.5")


@rule(
    "MET-012",
    title="Z08 follow-up code cannot be used when the followed cancer recurs, metastasis is found or treatment is billed",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.p, I.C.21.c.8; Tabular Z08 (Excludes1 Z51)",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=_FOLLOW_UP,
)
def met012_follow_up_with_disease(claim: Claim) -> Hit | None:
    """Z08 means follow-up after completed treatment with no recurrence.

    Error when Z08 stands beside a secondary or unknown-site code (C77-C79, C7B, C80.0,
    C80.1), beside an active primary of the same site family as a Z85 on the claim
    (a recurrence), or beside treatment (Z51.0, Z51.11, Z51.12, Z51.5): what is found
    at follow-up replaces the follow-up code. Otherwise a warning when Z08 stands beside
    another malignancy (other than C80.2) or another Z51 code: an unrelated cancer is
    reviewed, not rejected. Separately, Z08 without a Z85 code warns (Tabular: use
    additional code for the personal history).

    Example that fails: Z08, Z85.3, C79.51. Passes: Z08, Z85.3, Z90.12.
    """
    follow_up = claim.in_set(_FOLLOW_UP)
    if not follow_up:
        return None
    found = claim.with_traits(
        Trait.SECONDARY | Trait.SECONDARY_NET | Trait.DISSEMINATED | Trait.UNKNOWN_PRIMARY
    )
    recurred = [
        d
        for _, diagnoses in shared_families(claim)
        for d in diagnoses
        if d.info.traits & Trait.ACTIVE_PRIMARY
    ]
    treated = claim.in_set(_TREATMENT)
    if found or recurred or treated:
        reasons = found + recurred + treated
        return hit(
            "error",
            f"Z08 (follow-up after completed treatment) beside {codes_of(reasons)}: a "
            "recurrence, metastasis or treatment replaces the follow-up code",
            diagnoses=follow_up + reasons,
        )
    other_cancer = [
        d
        for d in claim.with_traits(Trait.MALIGNANCY)
        if not d.info.traits & Trait.TRANSPLANT_MALIGNANCY
    ]
    other_encounters = claim.in_set(_OTHER_ENCOUNTER)
    problems = []
    if other_cancer or other_encounters:
        problems.append(
            f"Z08 beside {codes_of(other_cancer + other_encounters)}: review whether the "
            "follow-up is for a cancer whose treatment is complete"
        )
    if not claim.has(Trait.HISTORY):
        problems.append("Z08 without a Z85 code for the personal history it follows up")
    if not problems:
        return None
    return hit(
        "warning", "; ".join(problems), diagnoses=follow_up + other_cancer + other_encounters
    )


@rule(
    "MET-016",
    title="Personal-history codes (Z85.-) should not be principal/first-listed",
    severity="error",
    citation="CMS Medicare Code Editor (unacceptable principal diagnosis); ICD-10-CM Official Guidelines I.C.2.d",
    carc="16",
    rarc="MA63",
    warning_branches=True,
    applies_to=Trait.HISTORY,
)
def met016_history_not_first(claim: Claim) -> Hit | None:
    """Z85 is an unacceptable principal diagnosis and follows active disease.

    A first-listed Z85 code is an error on an inpatient claim or beside any active
    malignancy (C00-C96, C7A, C7B); on an outpatient or professional claim with no
    malignancy it is a warning (surveillance visits lead with Z08, other visits with
    the reason for the visit). The secondary site may be first-listed with the Z85
    code as an additional code (I.C.2.d).

    Example that fails: inpatient Z85.3, C79.51. Passes: inpatient C79.51, Z85.3.
    """
    if not claim.first_has(Trait.HISTORY):
        return None
    first = claim.first
    assert first is not None  # first_has says so
    if claim.setting == "inpatient" or claim.has(Trait.MALIGNANCY):
        return hit(
            "error",
            f"{first.code} (personal history) is first-listed: sequence the active "
            "disease or the reason for the encounter first",
            diagnoses=[first],
        )
    return hit(
        "warning",
        f"{first.code} (personal history) is first-listed: surveillance visits lead with "
        "Z08, other visits with their reason",
        diagnoses=[first],
    )


_RECURRENCE_SITES: dict[str, CodeSet] = {
    "breast": CodeSet("C79.81"),
    "colon": CodeSet("C78.5"),
    "rectum": CodeSet("C78.5"),
    "bladder": CodeSet("C79.11"),
    "ovary": CodeSet("C79.6"),
    "kidney": CodeSet("C79.0"),
    "brain": CodeSet("C79.31"),
    "lung": CodeSet("C78.0"),
    "liver": CodeSet("C78.7"),
    "bone": CodeSet("C79.51"),
}


@rule(
    "MET-037",
    title="Recurrence at a former primary site is not coded as a secondary of that organ with Z85",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2.d, I.C.2.m",
    carc="16",
    rarc="M76",
    applies_to=Trait.HISTORY,
)
def met037_recurrence_coded_as_secondary(claim: Claim) -> Hit | None:
    """A cancer recurring at an eradicated primary's site is coded to that primary site.

    Z85 applies only when there is no evidence of an existing primary at the former site;
    a recurrence there is such evidence. So a Z85 code beside a secondary code of the
    same organ is flagged: breast Z85.3 with C79.81, colon Z85.038 or rectum Z85.048
    with C78.5, bladder Z85.51 with C79.11, ovary Z85.43 with C79.6-, kidney Z85.528 with
    C79.0-, brain Z85.841 with C79.31, lung Z85.118 with C78.0-, liver Z85.05 with C78.7,
    bone Z85.830 with C79.51. A warning, because the secondary may come from another
    primary.

    Example that warns: C79.81, Z85.3 for a lumpectomy-scar recurrence. Passes: C50.911.
    """
    involved: list[ClaimDiagnosis] = []
    for history in claim.with_traits(Trait.HISTORY):
        family = history.info.family
        organ = _RECURRENCE_SITES.get(family.name) if family else None
        if organ is None:
            continue
        secondaries = claim.in_set(organ)
        if secondaries:
            involved += [history, *secondaries]
    if not involved:
        return None
    return hit(
        "warning",
        f"{codes_of(involved)}: a secondary of the organ whose primary is coded as history; "
        "a recurrence at the former primary site is coded to the primary site",
        diagnoses=involved,
    )
