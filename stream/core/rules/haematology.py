"""MET-023, MET-024, MET-036 and MET-040: lymphoma, myeloma and leukaemia spread in their own codes."""

from __future__ import annotations

from stream.core.claim import Claim, ClaimDiagnosis
from stream.core.codes.icd10cm import Trait
from stream.core.rules.base import Hit, Pair, codes_of, hit, pair_hit, rule
from stream.core.rules.code_lists import SECONDARY_BONE, SECONDARY_MARROW


def unowned(claim: Claim, secondaries: list[ClaimDiagnosis], diseases: int) -> Pair | None:
    """Secondary codes beside a lymphoid or haematopoietic disease (`diseases`: traits), on a
    claim with no solid tumour that could own them (a solid primary, a Z85 other than
    Z85.6 and Z85.7-, or C80.1): the disease's own spread, coded as a secondary."""
    if not secondaries or claim.has(Trait.SOLID_TUMOUR_CONTEXT):
        return None
    found = claim.with_traits(diseases)
    return (secondaries, found) if found else None


@rule(
    "MET-023",
    title="Do not assign C77 for lymph-node involvement by lymphoma",
    severity="error",
    citation="ICD-10-CM Tabular C77 Excludes1 (C81-C86, C88, C96.-)",
    carc="16",
    rarc="M76",
    applies_to=Trait.NODAL_SECONDARY,
)
def met023_lymphoma_nodes(claim: Claim) -> Hit | None:
    """Nodal sites of lymphoma are in the lymphoma code's fifth character, not C77.

    ## What it checks
    A secondary lymph-node code ({Trait.NODAL_SECONDARY}) with a lymphoma code
    ({Trait.LYMPHOMA}) is an error unless the claim has a solid tumour that could own the
    nodal metastasis: a solid primary, a Z85 other than Z85.6 and Z85.7-, or C80.1 (a
    separate carcinoma of unknown primary can own the node). C77 with CLL/SLL (C91.1-) is
    not checked.

    ## Why
    The Tabular excludes lymphoma (C81-C86, C88, C96.-) from C77: the lymph-node regions a
    lymphoma involves are expressed by the lymphoma code itself.
    """
    return pair_hit(
        unowned(claim, claim.with_traits(Trait.NODAL_SECONDARY), Trait.LYMPHOMA),
        "error",
        lambda nodes, lymphomas: (
            f"{codes_of(nodes)} (secondary lymph nodes) beside the lymphoma "
            f"{codes_of(lymphomas)}: nodal involvement by lymphoma is expressed by the "
            "lymphoma code"
        ),
    )


@rule(
    "MET-024",
    title='Lymphoma spread to solid organs uses the lymphoma "extranodal and solid organ sites" code, not C78/C79',
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2.t",
    carc="16",
    rarc="M76",
    applies_to=Trait.ORGAN_SECONDARY,
)
def met024_lymphoma_organs(claim: Claim) -> Hit | None:
    """Organ involvement by lymphoma is not coded as a secondary malignancy.

    ## What it checks
    A Hodgkin or non-Hodgkin lymphoma ({Trait.HODGKIN_OR_NHL}) with a secondary of
    {Trait.ORGAN_SECONDARY}, and no solid tumour that could own the secondary (a solid
    primary, a Z85 other than Z85.6 and Z85.7-, or C80.1), warns.

    ## Why
    Lymphoma beyond the nodes takes the fifth character 9, 'extranodal and solid organ
    sites' (I.C.2.t): for diffuse large B-cell lymphoma C83.39 until 2024-09-30, and from
    2024-10-01 C83.398, or C83.390 for primary central nervous system lymphoma. A warning,
    because a marrow or organ code may belong to a solid tumour documented elsewhere.
    """
    return pair_hit(
        unowned(claim, claim.with_traits(Trait.ORGAN_SECONDARY), Trait.HODGKIN_OR_NHL),
        "warning",
        lambda organs, lymphomas: (
            f"{codes_of(organs)} beside the lymphoma {codes_of(lymphomas)}: lymphoma in "
            "organs is coded with its 'extranodal and solid organ sites' code (fifth "
            "character 9)"
        ),
    )


def _remission_reading(diagnosis: ClaimDiagnosis) -> str | None:
    """The remission status a code states, read from its official description.

    The catalogue reads the final character (0/1/2 for C88 and C90-C95, A for lymphoma).
    The description says the same for every code but three groups, where the final
    character misleads: C84.7A is ALK-negative ALCL of the breast (not 'in remission';
    that is C84.7B), and C86.x1 are 'in remission' with a digit.
    """
    if len(diagnosis.code) != 6:  # exactly two characters after the dot
        return None
    description = (diagnosis.info.description or "").lower()
    if "in relapse" in description:
        return "in relapse"
    if "in remission" in description:
        return "in remission"
    return "not in remission"


@rule(
    "MET-036",
    title="Remission status must not conflict within one leukaemia, myeloma or lymphoma subcategory",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.C.2.n",
    carc="16",
    rarc="M76",
    applies_to=Trait.HEME_PRIMARY,
)
def met036_remission_conflict(claim: Claim) -> Hit | None:
    """'Not in remission', 'in remission' and 'in relapse' exclude each other for one disease.

    ## What it checks
    Codes of {Trait.HEME_PRIMARY} with exactly two characters after the dot are grouped by
    their first five characters (C90.0, C83.3, ...), and each reads 'in relapse', 'in
    remission' or, when its description says neither, 'not in remission'. Two readings in one
    group is an error. Longer codes (C83.390, C83.398) take no part.

    ## Why
    Leukaemia, myeloma and (from 2024-10-01) lymphoma codes state the remission status
    (I.C.2.n), and one disease has one status on a claim. For C88 and C90-C95 the status is
    the final character 0, 1 or 2, and for most lymphoma codes a final A is 'in remission', as
    the catalogue puts it; the description is read instead because it is right where the
    final character misleads: C84.7A is ALK-negative ALCL of the breast (C84.7B is its
    remission), and C86.x1 are 'in remission'.
    """
    groups: dict[str, dict[str, ClaimDiagnosis]] = {}
    for diagnosis in claim.with_traits(Trait.HEME_PRIMARY):
        reading = _remission_reading(diagnosis)
        if reading is not None:
            groups.setdefault(diagnosis.code[:5], {}).setdefault(reading, diagnosis)
    conflicts = {group: readings for group, readings in groups.items() if len(readings) > 1}
    if not conflicts:
        return None
    involved = [d for readings in conflicts.values() for d in readings.values()]
    described = "; ".join(
        f"{group}: {', '.join(f'{d.code} {reading}' for reading, d in readings.items())}"
        for group, readings in conflicts.items()
    )
    return hit(
        "error",
        f"conflicting remission status within one disease ({described}); code one status",
        diagnoses=involved,
    )


BONE_OR_MARROW = SECONDARY_BONE | SECONDARY_MARROW


@rule(
    "MET-040",
    title="Myeloma or leukaemia with a secondary bone or marrow code",
    severity="warning",
    citation="ICD-10-CM Official Guidelines I.C.2 (introduction), I.C.2.d; Tabular C90.0 inclusion terms",
    carc="16",
    rarc="M76",
    applies_to=BONE_OR_MARROW,
)
def met040_myeloma_bone_secondary(claim: Claim) -> Hit | None:
    """Bone lesions and marrow involvement of myeloma or leukaemia are in the myeloma or leukaemia code.

    ## What it checks
    A myeloma or leukaemia ({Trait.MYELOMA_OR_LEUKAEMIA}) with {BONE_OR_MARROW} and no solid
    tumour that could own them (a solid primary, a Z85 other than Z85.6 and Z85.7-, or C80.1)
    warns. The lymphoma counterpart is MET-024.

    ## Why
    Secondary codes are for spread from another site (I.C.2, I.C.2.d); the bone lesions of
    myeloma are part of the disease its code names (Tabular C90.0 inclusion terms). A
    warning, because a bone or marrow secondary may come from a solid tumour documented
    elsewhere.
    """
    return pair_hit(
        unowned(claim, claim.in_set(BONE_OR_MARROW), Trait.MYELOMA_OR_LEUKAEMIA),
        "warning",
        lambda secondaries, marrow: (
            f"{codes_of(secondaries)} beside {codes_of(marrow)}: bone and marrow involvement "
            "of myeloma or leukaemia is part of its own code"
        ),
    )
