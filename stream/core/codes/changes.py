"""What a release changes against the code set in force the day before it takes effect.

`claims-stage codes load` prints it before an operator rolls a release out: codes added,
deleted (among them codes split into new ones: headers from then on) and re-described,
and, code by code, the changes inside the families the rules name. It also refuses a file
that lacks far more codes than any release deletes: a truncated file that happens to end on
a whole line reads as a release, and judging claims with it would reject thousands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from stream.core.codes.calendar import ONE_DAY, CodeSetPeriod
from stream.core.codes.codeset import CodeSet
from stream.core.codes.icd10cm import Icd10cmCatalog
from stream.core.codes.releases import ReleaseCodes, ReleaseFormatError

RULE_FAMILIES: tuple[tuple[str, CodeSet], ...] = (
    ("C00-C96", CodeSet("C00-C96 !C7A !C7B")),
    ("C7A/C7B", CodeSet("C7A C7B")),
    ("D00-D49", CodeSet("D00-D49")),
    ("Z08/Z51/Z85/Z86", CodeSet("Z08 Z51 Z85 Z86")),
    ("R18/R64", CodeSet("R18 R64")),
    ("G89.3", CodeSet("G89.3")),
    ("E88.A", CodeSet("E88.A")),
    ("M84.5", CodeSet("M84.5")),
)
"""The code families the rules name: a change inside them is listed code by code."""

MOST_DELETED = 0.05
"""The largest share of the previous set's billable codes a release may lack. ICD-10-CM
releases delete a few hundred of some 74,000 codes (well under 1 %)."""


@dataclass(frozen=True, slots=True)
class CodeChange:
    kind: str
    """`added`, `deleted`, `split` (billable before, a header now) or `re-described`."""
    code: str
    description: str
    """The release's text; for a deleted code, the text it had."""
    before: str | None = None
    """The text before, for a re-described code."""


@dataclass(frozen=True, slots=True)
class ReleaseChanges:
    against: CodeSetPeriod
    """The code set in force the day before the release takes effect (or the nearest)."""
    in_force: bool
    """Whether `against` is in force on that day (False: the nearest set)."""
    previous_billable: int
    added: tuple[CodeChange, ...]
    deleted: tuple[CodeChange, ...]
    """Deleted and split codes."""
    redescribed: tuple[CodeChange, ...]

    def in_families(self) -> list[tuple[str, list[CodeChange]]]:
        """Each rule family with the changes inside it, in code order; families without any
        are left out."""
        every = sorted((*self.added, *self.deleted, *self.redescribed), key=lambda c: c.code)
        found = []
        for name, codes in RULE_FAMILIES:
            inside = [change for change in every if change.code in codes]
            if inside:
                found.append((name, inside))
        return found


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def compare_release(
    catalog: Icd10cmCatalog, codes: ReleaseCodes, effective: dt.date
) -> ReleaseChanges:
    """The release against the code set that judges the day before `effective`."""
    period, in_force = catalog.calendar.judge(effective - ONE_DAY)
    previous = catalog.calendar.billable_codes(period)
    before = set(previous)

    def text_before(code: str) -> str | None:
        return catalog.own_text(code, period)

    added = tuple(
        CodeChange("added", code, codes.descriptions[code])
        for code in sorted(codes.billable - before)
    )
    deleted = tuple(
        CodeChange(
            "split" if code in codes.headers else "deleted",
            code,
            codes.descriptions.get(code) or text_before(code) or "",
        )
        for code in sorted(before - codes.billable)
    )
    redescribed = []
    for code in sorted(codes.billable & before):
        old, new = text_before(code), codes.descriptions[code]
        if old is not None and _words(old) != _words(new):
            redescribed.append(CodeChange("re-described", code, new, old))
    return ReleaseChanges(period, in_force, len(before), added, deleted, tuple(redescribed))


def check_complete(changes: ReleaseChanges, codes: ReleaseCodes) -> None:
    """Refuse a release that lacks far more codes than a release deletes (a truncated file)."""
    lacking = sum(1 for change in changes.deleted if change.kind == "deleted")
    if changes.previous_billable and lacking > MOST_DELETED * changes.previous_billable:
        raise ReleaseFormatError(
            f"the file ends here ({codes.last_code}) and lacks {lacking:,} of the "
            f"{changes.previous_billable:,} billable codes of {changes.against.name}, more "
            f"than {MOST_DELETED:.0%}: a truncated file? A release deletes a few hundred",
            codes.lines,
        )
