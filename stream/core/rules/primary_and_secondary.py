"""MET-005 to MET-009 and MET-041: primaries, secondaries and unknown sites belong together."""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import (
    Hit,
    Problems,
    codes_of,
    hit,
    labels_of,
    pair_hit,
    rule,
    together,
)
from stream.core.rules.code_lists import SECONDARY_MERKEL


@rule(
    "MET-005",
    title="A secondary malignancy code requires a primary-site indicator",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2 (introduction), I.C.2.d, I.C.2.k, I.C.2.l.2",
    carc="16",
    rarc="M76",
    applies_to=Trait.SECONDARY,
)
def met005_secondary_needs_primary(claim: Claim) -> Hit | None:
    """Whenever a secondary malignancy is reported, the claim must also say where the primary is.

    ## What it checks
    A claim with a secondary malignancy code ({Trait.SECONDARY}) fails when it has no
    primary-site indicator: an active primary ({Trait.SOLID_PRIMARY}, or
    {Trait.HEME_PRIMARY}), a personal-history code ({Trait.HISTORY}) for an eradicated
    primary, or {Trait.UNKNOWN_PRIMARY} when the primary cannot be determined.

    ## Why
    A secondary site is coded with its primary (Official Guidelines I.C.2, I.C.2.l.2), or
    with C80.1 when the primary is unknown (I.C.2.k). This corrects the absolute reading
    that a primary C code must always accompany a secondary: an eradicated primary is a Z85
    code (I.C.2.d).
    """
    secondaries = claim.with_traits(Trait.SECONDARY)
    if not secondaries or claim.has(Trait.ACTIVE_PRIMARY | Trait.HISTORY | Trait.UNKNOWN_PRIMARY):
        return None
    return hit(
        "error",
        f"{labels_of(secondaries)} has no primary site: code the active primary, "
        "a Z85 history code, or C80.1",
        diagnoses=secondaries,
    )


NET_PRIMARY = CodeSet("C7A")
NET_UNKNOWN_PRIMARY = CodeSet("C7A.00")
ENDOCRINE_PANCREAS = CodeSet("C25.4")
"""Malignant neoplasm of the endocrine pancreas (islet cells): a neuroendocrine primary."""
SOLID_PRIMARY_NOT_NET = CodeSet("C00-C76")
NET_HISTORY = CodeSet("Z85.020 Z85.030 Z85.040 Z85.060 Z85.07 Z85.110 Z85.230 Z85.520 Z85.89 Z85.9")
"""Personal-history codes that can stand for an eradicated neuroendocrine primary."""
NET_INDICATOR = NET_PRIMARY | ENDOCRINE_PANCREAS | NET_HISTORY
NET_SECONDARY = CodeSet("C7B.0 C7B.8")
MERKEL_PRIMARY = CodeSet("C4A")
MERKEL_HISTORY = CodeSet("Z85.821")
MERKEL_INDICATOR = MERKEL_PRIMARY | MERKEL_HISTORY


@rule(
    "MET-006",
    title="Neuroendocrine tumours: secondaries of carcinoid/NET primaries use C7B, and C7B needs a NET primary indicator",
    severity="error",
    citation="ICD-10-CM Tabular Excludes1 at C78, C79 and C79.5 (secondary carcinoid tumours C7B.-); C80 Excludes1 (C7A.00)",
    carc="16",
    rarc="M76",
    applies_to=Trait.SOLID_PRIMARY | Trait.SECONDARY_NET,
)
def met006_neuroendocrine_secondaries(claim: Claim) -> Hit | None:
    """Carcinoid and NET metastases are C7B, not C78/C79, and C7B needs a neuroendocrine primary.

    ## What it checks
    (a) A neuroendocrine primary ({NET_PRIMARY}) with a secondary of
    {Trait.ORGAN_SECONDARY}, and nothing else that could own that secondary (no other solid
    primary {SOLID_PRIMARY_NOT_NET}, no solid-tumour Z85 outside the NET history list), is
    an error. (b) A secondary neuroendocrine tumour ({NET_SECONDARY}) with no
    neuroendocrine primary or history ({NET_INDICATOR}) is an error. (c) Secondary Merkel
    cell carcinoma ({SECONDARY_MERKEL}) with no Merkel cell primary or history
    ({MERKEL_INDICATOR}) is an error. The NET history list is {NET_HISTORY}. C77 is not
    part of (a): regional nodes of a carcinoid may still be C77.

    ## Why
    The Tabular excludes secondary carcinoid tumours (C7B.-) from C78, C79 and C79.5, so
    a carcinoid's metastasis coded to C78/C79 is coded to the wrong category. A C7B code
    needs the neuroendocrine primary it came from; an unknown neuroendocrine primary is
    {NET_UNKNOWN_PRIMARY}, not C80.1 (C80 Excludes1).
    """
    problems = Problems()
    net_primaries = claim.in_set(NET_PRIMARY)
    organ_secondaries = claim.with_traits(Trait.ORGAN_SECONDARY) if net_primaries else []
    other_owner = organ_secondaries and (
        claim.any_in(SOLID_PRIMARY_NOT_NET)
        or any(d.code not in NET_HISTORY for d in claim.with_traits(Trait.SOLID_HISTORY))
    )
    if organ_secondaries and not other_owner:
        problems.add(
            f"{codes_of(organ_secondaries)} beside the neuroendocrine primary "
            f"{codes_of(net_primaries)}: code its metastases to C7B",
            net_primaries + organ_secondaries,
        )
    net_secondaries = claim.in_set(NET_SECONDARY)
    if net_secondaries and not claim.any_in(NET_INDICATOR):
        problems.add(
            f"{codes_of(net_secondaries)} needs a neuroendocrine primary "
            f"({NET_PRIMARY}, {ENDOCRINE_PANCREAS} or a NET history code; unknown primary "
            f"is {NET_UNKNOWN_PRIMARY})",
            net_secondaries,
        )
    merkel = claim.in_set(SECONDARY_MERKEL)
    if merkel and not claim.any_in(MERKEL_INDICATOR):
        problems.add(
            f"{codes_of(merkel)} needs a Merkel cell primary ({MERKEL_PRIMARY}) or {MERKEL_HISTORY}",
            merkel,
        )
    return problems.hit("error")


@rule(
    "MET-007",
    title="C80.1 (unknown primary) together with a specified primary or another cancer is reviewed",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2.k; Tabular C80.1",
    carc="16",
    rarc="M76",
    applies_to=Trait.UNKNOWN_PRIMARY,
)
def met007_unknown_primary_beside_known(claim: Claim) -> Hit | None:
    """C80.1 beside a specified primary, a haematological cancer or a Z85 is reviewed.

    ## What it checks
    {Trait.UNKNOWN_PRIMARY} (primary site unknown) with a specified solid primary
    ({Trait.SOLID_PRIMARY}; a {Trait.OTHER_SKIN} skin cancer does not count) warns; so
    does C80.1 with a lymphoid or haematopoietic primary ({Trait.HEME_PRIMARY}) or a
    personal-history code ({Trait.HISTORY}). C80.1 as the principal diagnosis of an
    inpatient claim warns too.

    ## Why
    C80.1 means the primary of a malignancy cannot be determined (I.C.2.k). The same
    patient can have a separate, known cancer: liver metastases of unknown primary in a man
    with prostate cancer on surveillance are C78.7, C80.1, C61. So the pairing is
    reviewed, never rejected. The Tabular says C80.1 should rarely be used in the
    inpatient setting.
    """
    unknown = claim.with_traits(Trait.UNKNOWN_PRIMARY)
    if not unknown:
        return None
    specified = [
        d for d in claim.with_traits(Trait.SOLID_PRIMARY) if not d.info.traits & Trait.OTHER_SKIN
    ]
    if specified:
        return hit(
            "warning",
            f"C80.1 (primary site unknown) beside the specified primary {codes_of(specified)}: "
            "review whether the primary is in fact known",
            diagnoses=unknown + specified,
        )
    others = claim.with_traits(Trait.HEME_PRIMARY | Trait.HISTORY)
    if others:
        return hit(
            "warning",
            f"C80.1 (primary site unknown) beside {codes_of(others)}: review whether the "
            "unknown primary is a separate cancer",
            diagnoses=unknown + others,
        )
    if claim.setting == "inpatient" and claim.first_has(Trait.UNKNOWN_PRIMARY):
        return hit(
            "warning",
            "C80.1 is the principal diagnosis of an inpatient claim; it should rarely be "
            "used in the inpatient setting",
            diagnoses=unknown,
        )
    return None


PRIMARY_SITE_UNKNOWN = CodeSet("C80.1")
SECONDARY_SITE_UNKNOWN = CodeSet("C79.9")


@rule(
    "MET-008",
    title="C80.1 and C79.9 are mutually exclusive",
    severity="error",
    citation="ICD-10-CM Tabular Excludes1 at C80.1 and at C79.9",
    carc="16",
    rarc="M76",
    applies_to=Trait.UNKNOWN_PRIMARY,
)
def met008_unknown_primary_and_unknown_secondary(claim: Claim) -> Hit | None:
    """C80.1 (primary site unknown) and C79.9 (secondary, unspecified site) exclude each other.

    ## What it checks
    A claim with both {PRIMARY_SITE_UNKNOWN} and {SECONDARY_SITE_UNKNOWN} fails.

    ## Why
    Each code carries an Excludes1 note naming the other. The known secondary sites are
    coded with C80.1; when neither the primary nor any secondary site is known, the code is
    C80.0 (I.C.2.j).
    """
    return pair_hit(
        together(claim, PRIMARY_SITE_UNKNOWN, SECONDARY_SITE_UNKNOWN),
        "error",
        lambda _, __: (
            f"{PRIMARY_SITE_UNKNOWN} and {SECONDARY_SITE_UNKNOWN} exclude each other: code the "
            f"known secondary sites with {PRIMARY_SITE_UNKNOWN}, or C80.0 when no site is known"
        ),
    )


@rule(
    "MET-009",
    title="C80.0 (disseminated, unspecified) only when no primary or secondary site is known",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.j; Tabular Excludes1 at C79.9 and C80",
    carc="16",
    rarc="M76",
    applies_to=Trait.DISSEMINATED,
)
def met009_disseminated_with_known_sites(claim: Claim) -> Hit | None:
    """C80.0 (carcinomatosis NOS, generalised cancer) must not replace known sites.

    ## What it checks
    {Trait.DISSEMINATED} with a solid primary ({Trait.SOLID_PRIMARY}), a secondary
    ({Trait.SECONDARY}, {Trait.SECONDARY_NET}) or {Trait.UNKNOWN_PRIMARY} is an error.

    ## Why
    C80.0 is for a malignancy whose primary and secondary sites are all unknown (I.C.2.j;
    Excludes1 at C79.9 and C80). Where a site is known, the primary and every known
    secondary site are coded instead: peritoneal carcinomatosis with a known primary is
    C78.6 plus the primary.
    """
    disseminated = claim.with_traits(Trait.DISSEMINATED)
    if not disseminated:
        return None
    known = claim.with_traits(
        Trait.SOLID_PRIMARY | Trait.SECONDARY | Trait.SECONDARY_NET | Trait.UNKNOWN_PRIMARY
    )
    if not known:
        return None
    return hit(
        "error",
        f"C80.0 (disseminated, site unknown) beside known sites {codes_of(known)}: "
        "code the primary and each known secondary site instead",
        diagnoses=disseminated + known,
    )


@rule(
    "MET-041",
    title="C79.9 (secondary, unspecified site) together with a specified secondary site",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.B.3, I.C.2 (introduction); Tabular C79.9",
    carc="16",
    rarc="M81",
    applies_to=SECONDARY_SITE_UNKNOWN,
)
def met041_unspecified_secondary_beside_specified(claim: Claim) -> Hit | None:
    """C79.9 is for metastatic disease whose site is not documented.

    ## What it checks
    {SECONDARY_SITE_UNKNOWN} beside a specified secondary site (another code of
    {Trait.SECONDARY}; {Trait.SECONDARY_NET} does not count) warns. C79.9 with C80.1 is
    MET-008's.

    ## Why
    When a secondary site is coded, C79.9 adds nothing: codes are reported to the
    specificity the documentation gives (I.B.3), and each known secondary site is coded
    (I.C.2). A warning, since C79.9 may stand for a further site the record does not name.
    """
    unspecified = claim.in_set(SECONDARY_SITE_UNKNOWN)
    if not unspecified:
        return None
    specified = [
        d for d in claim.with_traits(Trait.SECONDARY) if d.code not in SECONDARY_SITE_UNKNOWN
    ]
    if not specified:
        return None
    return hit(
        "warning",
        f"{SECONDARY_SITE_UNKNOWN} (secondary, unspecified site) beside the specified "
        f"secondary site {codes_of(specified)}: drop {SECONDARY_SITE_UNKNOWN}",
        diagnoses=unspecified + specified,
    )
