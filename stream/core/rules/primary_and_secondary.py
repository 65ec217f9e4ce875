"""MET-005 to MET-009 and MET-041: primaries, secondaries and unknown sites belong together."""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, codes_of, hit, labels_of, rule


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
    """Whenever C77-C79 is reported, the claim must also say where the primary is.

    A primary-site indicator is an active primary (C00-C76 including C4A and C7A, or
    C81-C96), a personal-history code (Z85.-) for an eradicated primary, or C80.1 when
    the primary cannot be determined. This corrects the absolute reading that a primary
    C code must always accompany a secondary: an eradicated primary is a Z85 code.

    Example that fails: C79.51 alone. Passes: C79.51, C80.1.
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


_NET_PRIMARY = CodeSet("C7A")
_SOLID_PRIMARY_NOT_NET = CodeSet("C00-C76")
_NET_HISTORY = CodeSet(
    "Z85.020 Z85.030 Z85.040 Z85.060 Z85.07 Z85.110 Z85.230 Z85.520 Z85.89 Z85.9"
)
_NET_SECONDARY = CodeSet("C7B.0 C7B.8")
_NET_INDICATOR = CodeSet(
    "C7A C25.4 Z85.020 Z85.030 Z85.040 Z85.060 Z85.07 Z85.110 Z85.230 Z85.520 Z85.89 Z85.9"
)
_MERKEL_SECONDARY = CodeSet("C7B.1")
_MERKEL_INDICATOR = CodeSet("C4A Z85.821")


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
    """Carcinoid and NET metastases are C7B, not C78/C79, and C7B needs a NET primary.

    (a) A C7A primary with a C78/C79 secondary, and nothing else that could own that
    secondary (no other solid primary C00-C76, no solid-tumour Z85 outside the NET
    history list), is an error: the Tabular excludes secondary carcinoid tumours from
    C78/C79. (b) C7B.0- or C7B.8 with no C7A, C25.4 or NET history code is an error.
    (c) C7B.1 (secondary Merkel cell) with no C4A or Z85.821 is an error. The NET history
    list is Z85.020, .030, .040, .060, .07, .110, .230, .520, .89 and .9. An unknown NET
    primary is C7A.00, not C80.1. C77 is deliberately not part of (a): regional nodes of
    a carcinoid may still be C77.

    Example that fails: C7A.012, C78.7. Passes: C7B.02, Z85.07 (eradicated pancreatic
    primary).
    """
    problems: list[str] = []
    involved = []
    net_primaries = claim.in_set(_NET_PRIMARY)
    organ_secondaries = claim.with_traits(Trait.ORGAN_SECONDARY)
    other_owner = claim.in_set(_SOLID_PRIMARY_NOT_NET) or [
        d for d in claim.with_traits(Trait.SOLID_HISTORY) if d.code not in _NET_HISTORY
    ]
    if net_primaries and organ_secondaries and not other_owner:
        problems.append(
            f"{codes_of(organ_secondaries)} beside the neuroendocrine primary "
            f"{codes_of(net_primaries)}: code its metastases to C7B"
        )
        involved += net_primaries + organ_secondaries
    net_secondaries = claim.in_set(_NET_SECONDARY)
    if net_secondaries and not claim.in_set(_NET_INDICATOR):
        problems.append(
            f"{codes_of(net_secondaries)} needs a neuroendocrine primary "
            "(C7A, C25.4 or a NET history code; unknown primary is C7A.00)"
        )
        involved += net_secondaries
    merkel = claim.in_set(_MERKEL_SECONDARY)
    if merkel and not claim.in_set(_MERKEL_INDICATOR):
        problems.append(f"{codes_of(merkel)} needs a Merkel cell primary (C4A) or Z85.821")
        involved += merkel
    if not problems:
        return None
    return hit("error", "; ".join(problems), diagnoses=involved)


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

    C80.1 means the primary of a malignancy cannot be determined. The same patient can
    have a separate, known cancer (liver metastases of unknown primary in a man with
    prostate cancer on surveillance: C78.7, C80.1, C61), so the pairing is a warning,
    never an error. A coexisting C44 skin cancer does not count. C80.1 as the inpatient
    principal diagnosis is also flagged: it should rarely be used there.

    Example that warns: C34.11, C79.51, C80.1. Passes: C79.51, C80.1.
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


_UNKNOWN_SITES = CodeSet("C80.1 C79.9")


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
    """C80.1 (primary unspecified) and C79.9 (secondary, unspecified site) exclude each other.

    Each carries an Excludes1 note naming the other. Code the known secondary sites with
    C80.1; when neither the primary nor any secondary site is known, the code is C80.0.

    Example that fails: C79.9, C80.1. Passes: C78.7, C80.1.
    """
    pair = claim.in_set(_UNKNOWN_SITES)
    if {d.code for d in pair} != {"C80.1", "C79.9"}:
        return None
    return hit(
        "error",
        "C80.1 and C79.9 exclude each other: code the known secondary sites with C80.1, "
        "or C80.0 when no site is known",
        diagnoses=pair,
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

    C80.0 with a solid primary (C00-C76, C4A, C7A), a secondary (C77-C79, C7B) or C80.1
    is an error: code the primary and every known secondary site instead. Peritoneal
    carcinomatosis with a known primary is C78.6 plus the primary.

    Example that fails: C80.0, C56.9, C78.6. Passes: C78.6, C56.9.
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


_SECONDARY_SITE_UNKNOWN = CodeSet("C79.9")


@rule(
    "MET-041",
    title="C79.9 (secondary, unspecified site) together with a specified secondary site",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.B.3, I.C.2 (introduction); Tabular C79.9",
    carc="16",
    rarc="M81",
    applies_to=_SECONDARY_SITE_UNKNOWN,
)
def met041_unspecified_secondary_beside_specified(claim: Claim) -> Hit | None:
    """C79.9 is for metastatic disease whose site is not documented.

    When a secondary site is coded (another C77-C79 code; C7B does not count), C79.9 adds
    nothing and is flagged. C79.9 with C80.1 is MET-008.

    Example that warns: C34.11, C78.7, C79.9. Passes: C34.11, C78.7.
    """
    unspecified = claim.in_set(_SECONDARY_SITE_UNKNOWN)
    if not unspecified:
        return None
    specified = [d for d in claim.with_traits(Trait.SECONDARY) if d.code != "C79.9"]
    if not specified:
        return None
    return hit(
        "warning",
        f"C79.9 (secondary, unspecified site) beside the specified secondary site "
        f"{codes_of(specified)}: drop C79.9",
        diagnoses=unspecified + specified,
    )
