"""MET-010, MET-011, MET-012, MET-016 and MET-037: active disease versus personal history."""

from __future__ import annotations

from stream.core.claim import Claim, ClaimDiagnosis, Fact
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import TRAIT_CODES, SiteFamily, Trait
from stream.core.contracts import Severity
from stream.core.rules.base import Hit, Problems, codes_of, current_malignancies, hit, rule
from stream.core.rules.code_lists import SECONDARY_BONE, TREATMENT_ENCOUNTER

PAIRED_OR_MULTICENTRIC = frozenset(
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

    ## What it checks
    Each active primary and each Z85 code maps to a site family (catalogue Appendix A,
    `stream/core/codes/data/site_families.csv`; `claims-stage code CODE` shows a code's). A
    family present both as an active primary and as a Z85 code is an error, and a warning
    when every such family is paired or multicentric: {PAIRED_OR_MULTICENTRIC}.

    ## Why
    Z85 describes a former primary that has been eradicated, with no evidence of an existing
    primary at that site (I.C.2.d, I.C.2.m). Where the Tabular excludes the pair (the
    haematological families: Excludes1 at C81-C96 to Z85.6/Z85.7-) or the organ is single,
    history plus active disease of it means a recurrence, which is coded to the primary site.
    In paired or multicentric sites a new primary beside an eradicated one is common, so the
    finding is a warning there; Z85 has no laterality, so a same-breast recurrence coded with
    Z85.3 also only warns.
    """
    shared = shared_families(claim)
    if not shared:
        return None
    severity: Severity = (
        "warning" if all(f.name in PAIRED_OR_MULTICENTRIC for f, _ in shared) else "error"
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
    needs=Fact.PRIMARY_STATUS,
)
def met011_primary_status_agrees(claim: Claim) -> Hit | None:
    """An active primary needs a C code; an eradicated primary must not carry one.

    ## What it checks
    (a) `primary_status` 'active' with no active primary code ({Trait.SOLID_PRIMARY},
    {Trait.HEME_PRIMARY}) is an error, and a warning when {Trait.DISSEMINATED} or
    {Trait.UNKNOWN_PRIMARY} is on the claim (the primary is active but not located). (b)
    'eradicated' with an active primary code is an error when the claim has no Z85 code, and
    a warning when it has one (the active code may be a second cancer beside the eradicated
    one). 'unknown' and an absent status are not checked.

    ## Why
    'eradicated' means the three-part test of I.C.2.m holds: the primary was excised or
    eradicated, no further treatment is directed to its site, and there is no evidence of an
    existing primary there; it is then a Z85 code (I.C.2.d). A primary excised but still
    under adjuvant therapy is 'active', and is coded as a current malignancy.
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
            f"({TRAIT_CODES[Trait.SOLID_PRIMARY]} or {TRAIT_CODES[Trait.HEME_PRIMARY]})",
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


FOLLOW_UP = CodeSet("Z08")
OTHER_ENCOUNTER = CodeSet("Z51") - TREATMENT_ENCOUNTER


@rule(
    "MET-012",
    title="Z08 follow-up code cannot be used when the followed cancer recurs, metastasis is found or treatment is billed",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.p, I.C.21.c.8; Tabular Z08 (Excludes1 Z51)",
    carc="16",
    rarc="M76",
    warning_branches=True,
    applies_to=FOLLOW_UP,
)
def met012_follow_up_with_disease(claim: Claim) -> Hit | None:
    """Z08 means follow-up after completed treatment with no recurrence.

    ## What it checks
    {FOLLOW_UP} is an error beside a secondary or unknown-site code ({Trait.SECONDARY},
    {Trait.SECONDARY_NET}, {Trait.DISSEMINATED}, {Trait.UNKNOWN_PRIMARY}), beside an active
    primary of the same site family as a Z85 code on the claim (a recurrence), or beside
    treatment ({TREATMENT_ENCOUNTER}). Otherwise it warns beside another malignancy (other
    than C80.2) or another encounter code ({OTHER_ENCOUNTER}), and it warns without a Z85
    code.

    ## Why
    Z08 is for follow-up examination after completed treatment (I.C.21.c.8): what is found at
    follow-up, a recurrence, a metastasis or treatment, replaces the follow-up code (I.C.2.p;
    Tabular Z08 Excludes1 Z51). An unrelated cancer beside it is reviewed, not rejected. The
    Tabular asks for an additional code for the personal history the follow-up concerns.
    """
    follow_up = claim.in_set(FOLLOW_UP)
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
    treated = claim.in_set(TREATMENT_ENCOUNTER)
    if found or recurred or treated:
        reasons = found + recurred + treated
        return hit(
            "error",
            f"{FOLLOW_UP} (follow-up after completed treatment) beside {codes_of(reasons)}: a "
            "recurrence, metastasis or treatment replaces the follow-up code",
            diagnoses=follow_up + reasons,
        )
    others = current_malignancies(claim) + claim.in_set(OTHER_ENCOUNTER)
    problems = Problems()
    if others:
        problems.add(
            f"{FOLLOW_UP} beside {codes_of(others)}: review whether the follow-up is for a cancer "
            "whose treatment is complete",
            others,
        )
    if not claim.has(Trait.HISTORY):
        problems.add(f"{FOLLOW_UP} without a Z85 code for the personal history it follows up")
    return problems.hit("warning", diagnoses=follow_up)


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

    ## What it checks
    A first-listed personal-history code ({Trait.HISTORY}) is an error on an inpatient claim
    or beside any active malignancy ({Trait.MALIGNANCY}); on an outpatient or professional
    claim with no malignancy it is a warning.

    ## Why
    Z85 codes are on the Medicare Code Editor's unacceptable-principal list. With active
    disease, the disease or the reason for the encounter leads; the secondary site may lead
    with the Z85 code as an additional code (I.C.2.d). A surveillance visit leads with Z08,
    another visit with its reason, which a claim without a malignancy may not show: a warning
    there.
    """
    first = claim.first_with(Trait.HISTORY)
    if first is None:
        return None
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


RECURRENCE_SITES: dict[str, CodeSet] = {
    "breast": CodeSet("C79.81"),
    "colon": CodeSet("C78.5"),
    "rectum": CodeSet("C78.5"),
    "bladder": CodeSet("C79.11"),
    "ovary": CodeSet("C79.6"),
    "kidney": CodeSet("C79.0"),
    "brain": CodeSet("C79.31"),
    "lung": CodeSet("C78.0"),
    "liver": CodeSet("C78.7"),
    "bone": SECONDARY_BONE,
}
"""By site family: the secondary code of the organ whose primary a Z85 code of the family
says was eradicated."""


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

    ## What it checks
    A Z85 code beside a secondary code of the organ its site family names warns. By site
    family, the secondary codes are: {RECURRENCE_SITES}.

    ## Why
    Z85 applies only when there is no evidence of an existing primary at the former site
    (I.C.2.d, I.C.2.m); a recurrence there is such evidence, and is coded to the primary site.
    A warning, because the secondary may come from another primary.
    """
    involved: list[ClaimDiagnosis] = []
    for history in claim.with_traits(Trait.HISTORY):
        family = history.info.family
        organ = RECURRENCE_SITES.get(family.name) if family else None
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
