"""MET-001 to MET-004: are the codes real, billable and payable as billed?"""

from __future__ import annotations

from stream.core.claim import Claim
from stream.core.rules.base import Hit, codes_of, hit, rule


@rule(
    "MET-001",
    title="ICD-10-CM code must be valid in the loaded code set (after normalisation)",
    severity="error",
    citation="CMS Medicare Code Editor edit 1 (invalid diagnosis code); ICD-10-CM Official Guidelines I.B.3",
    carc="146",
    rarc="M76",
)
def met001_valid_code(claim: Claim) -> Hit | None:
    """Every diagnosis code, normalised, must exist in the loaded ICD-10-CM release.

    Normalisation runs first (trim, upper case, drop every dot, one dot after the third
    character), so `C3411`, `c34.11` and `C34.11` are the same valid code and a misplaced
    dot is never an error; `C78.03` is invalid in every form. A code fails when it does
    not have the shape of an ICD-10-CM code or is not in the April 2026 release. Every
    claim is checked against that release, whatever its date of service.

    Example that fails: C50.912, C78.03 (there is no C78.03; bilateral lung metastases are
    C78.01 + C78.02). Passes: C50912, C7801, C7802.
    """
    invalid = [d for d in claim.diagnoses if not d.info.valid]
    if not invalid:
        return None
    noun = "is not a valid ICD-10-CM code" if len(invalid) == 1 else "are not valid ICD-10-CM codes"
    return hit("error", f"{codes_of(invalid)} {noun} in the April 2026 release", diagnoses=invalid)


@rule(
    "MET-002",
    title="ICD-10-CM code must be billable (a leaf code, all required characters)",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.B.3 (code to the full number of characters)",
    carc="16",
    rarc="M76",
)
def met002_billable_code(claim: Claim) -> Hit | None:
    """A valid code that has children is a header, and headers are not reportable.

    Examples of headers: C77, C78.0, C79.5, C7B.0, C83.39 (split into C83.390/C83.398),
    Z85.0, and M84.551 without its seventh character.

    Example that fails: C18.7, C78.0. Passes: C18.7, C78.01.
    """
    headers = [d for d in claim.valid if not d.info.billable]
    if not headers:
        return None
    verb = "is a header code" if len(headers) == 1 else "are header codes"
    return hit(
        "error",
        f"{codes_of(headers)} {verb} with more specific codes below; report a billable leaf code",
        diagnoses=headers,
    )


@rule(
    "MET-003",
    title="CPT code must be active on the date of service",
    severity="error",
    citation="AMA CPT annual code changes (32405 deleted 2021-01-01, 10022 deleted 2019-01-01)",
    carc="181",
    rarc="M51",
    reads_procedures=True,
)
def met003_active_procedure(claim: Claim) -> Hit | None:
    """A procedure code deleted before the date of service is rejected.

    The reference table carries deletion dates: 32405 (deleted 2021-01-01; use 32408,
    core needle biopsy of lung or mediastinum with imaging guidance) and 10022 (deleted
    2019-01-01; use 10005-10012). Production should load the full annual deletion list.

    Example that fails: C34.11 with 32405. Passes: C34.11 with 32408.
    """
    deleted = [
        p
        for p in claim.procedures
        if p.info.deleted_on is not None and claim.date_of_service >= p.info.deleted_on
    ]
    if not deleted:
        return None
    described = ", ".join(f"{p.code} (deleted {p.info.deleted_on})" for p in deleted)
    return hit(
        "error",
        f"{described}: not active on the date of service {claim.date_of_service}",
        procedures=deleted,
    )


@rule(
    "MET-004",
    title="Add-on CPT codes require their primary procedure on the same claim",
    severity="error",
    citation="CMS NCCI add-on code edits; CPT add-on code conventions",
    carc="107",
    rarc="N122",
    reads_procedures=True,
)
def met004_add_on_needs_primary(claim: Claim) -> Hit | None:
    """An add-on code ('each additional', 'list separately') is not payable alone.

    Add-ons and their primaries, from the reference table: 10004 needs 10021, 10006
    needs 10005, 10008 needs 10007, 10010 needs 10009, 10012 needs 10011; 38900 needs a
    lymph-node biopsy, excision or dissection or a qualifying mastectomy; 47001 needs any
    other major surgical procedure (10021-69990 other than 47000 and 47001). The rule
    fires when none of the required primaries is on the claim.

    Example that fails: C73, C77.0 with 10006 alone. Passes: the same with 10005, 10006.
    """
    orphans = [
        p
        for p in claim.procedures
        if p.info.add_on_primaries is not None
        and not any(
            code in p.info.add_on_primaries for code in claim.procedure_codes if code != p.code
        )
    ]
    if not orphans:
        return None
    verb = "is an add-on code" if len(orphans) == 1 else "are add-on codes"
    return hit(
        "error",
        f"{', '.join(p.code for p in orphans)} {verb} billed without a required primary procedure",
        procedures=orphans,
    )
